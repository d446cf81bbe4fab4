#!/usr/bin/env bash
# Here, before a GPU call: put what the GPU machine needs into .gpu/ (git-ignored, carried with the call).
# The teacher cache travels as ids (kdtts.distill.portable_cache) and the teacher voice as xz; about 60 MB.
# Usage: bash tools/gpu_pack.sh [CACHE]   (default cache/joe-t0). See docs/training-on-a-gpu.md.
set -euo pipefail
cache=${1:-cache/joe-t0}
voice=$(python -c "from kdtts.teachers.piper import default_voice; print(default_voice())")
mkdir -p .gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
python -m kdtts.distill.portable_cache pack "$cache" .gpu/pack
[ -f .gpu/joe.onnx.xz ] || xz -9 -T0 -k -c "$voice" > .gpu/joe.onnx.xz
cp "$voice.json" .gpu/joe.onnx.json
du -sh .gpu
