#!/usr/bin/env bash
# There, on the GPU machine (repo root, .gpu carried, $OUT set by the device tool): rebuild the teacher cache
# from .gpu/, run each `python -m kdtts` command given as an argument side by side on the one GPU until DEADLINE
# seconds after the start, then put each run's loss log, config, best checkpoint and last 5 snapshots in
# $OUT/<run>.tar. The machine needs PyTorch, onnx and onnxruntime; soundfile is stubbed (training reads no audio
# files). Env: DEADLINE (default 450), LIMIT (sentences to rebuild, default all; give a distill command
# `--sentences` at most what was rebuilt, or it tries to read more with the teacher), WORKERS (default nproc).
# Example: DEADLINE=470 bash tools/gpu_run.sh "adversarial --config assets/provenance/adversarial_gpu.json --out runs/gpu_gan"
start=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/shim:$PWD
mkdir -p /tmp/shim
printf 'def _missing(*a, **k):\n    raise RuntimeError("soundfile is not installed here")\nread = write = info = _missing\n' \
  > /tmp/shim/soundfile.py
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('.gpu/joe.onnx.xz'), open('/tmp/joe.onnx', 'wb'))" || exit 1
cp .gpu/joe.onnx.json /tmp/joe.onnx.json
python3 -m kdtts.distill.portable_cache rebuild .gpu/pack /tmp/joe.onnx cache/joe-t0 --workers "${WORKERS:-$(nproc)}" \
  ${LIMIT:+--limit $LIMIT} 2>&1 | tr '\r' '\n' | grep -v '^teacher rereads' | tail -2
echo "cache rebuilt at $(( $(date +%s) - start )) s: $(wc -l < cache/joe-t0/manifest.jsonl) sentences"
left=$(( ${DEADLINE:-450} - ($(date +%s) - start) ))
for command in "$@"; do
  run=$(basename "$(echo "$command" | sed -E 's/.*--out +([^ ]+).*/\1/')")
  timeout "$left" python3 -m kdtts $command > "$OUT/$run.log" 2>&1 &
done
wait
echo "trained until $(( $(date +%s) - start )) s"
for command in "$@"; do
  dir=$(echo "$command" | sed -E 's/.*--out +([^ ]+).*/\1/')
  files=$(ls "$dir"/loss.csv "$dir"/config.json "$dir"/best.safetensors 2>/dev/null; ls "$dir"/step*.safetensors 2>/dev/null | tail -5)
  tar cf "$OUT/$(basename "$dir").tar" $files
  tail -c 400 "$OUT/$(basename "$dir").log" | tr '\r' '\n' | tail -1
done
ls -la "$OUT"
