"""`synth`: text to WAV, one per line of a text file, ending with one JSON line of totals.

The student path (the default teacher's text front end + the exported student on onnxruntime) imports
neither torch nor onnx once the student's export and the teacher's sub-graphs are cached."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kdtts.cli.common import add_teacher, vocoder_pair
from kdtts.cli.errors import fail
from kdtts.teachers.registry import DEFAULT_TEACHER


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    p.add_argument("--model", choices=["teacher", "student"], default="teacher")
    add_teacher(p)
    p.add_argument("--text")
    p.add_argument("--out", help="WAV file for --text")
    p.add_argument("--text-file", help="one utterance per non-empty line")
    p.add_argument("--out-dir", help="folder for 000.wav, 001.wav ... from --text-file")
    p.add_argument("--durations", choices=["student", "teacher"], default="student",
                   help="--model student: whose durations to use; 'teacher' makes the output sample-aligned "
                        "with the teacher's (for aligned listening and PESQ/STOI)")
    p.add_argument("--deterministic", action="store_true", help="teacher noise scales 0 (repeatable output)")
    p.add_argument("--threads", type=int, help="torch and onnxruntime intra-op threads")
    p.add_argument("--voice", help="Piper voice .onnx (default: en_US-joe-medium)")
    p.add_argument("--student", help="student checkpoint (default: assets/student.safetensors)")


def jobs(args: argparse.Namespace) -> list[tuple[str, Path, str]]:
    """(text, output path, where the text came from) per utterance, every text validated first."""
    from kdtts.text import TextError, validate

    if (args.text is None) == (args.text_file is None):
        fail("give exactly one of --text or --text-file")
    if args.text is not None and not args.out:
        fail("--text needs --out FILE.wav")
    if args.text_file is not None and not args.out_dir:
        fail("--text-file needs --out-dir DIR")
    if args.text is not None:
        found = [(args.text, Path(args.out), "--text")]
    else:
        try:
            raw = Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            fail(f"cannot read --text-file {args.text_file}: {error}")
        lines = [(k, line.strip()) for k, line in enumerate(raw.splitlines(), 1) if line.strip()]
        if not lines:
            fail(f"{args.text_file} has no non-empty lines to speak")
        found = [(line, Path(args.out_dir) / f"{i:03d}.wav", f"{args.text_file} line {k}")
                 for i, (k, line) in enumerate(lines)]
    for text, _, source in found:  # fail fast, before any model is loaded
        try:
            validate(text)
        except TextError as error:
            fail(f"{source}: {error}")
    return found


def _progress(items: list, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="utt", disable=len(items) < 2, file=sys.stderr)


def run(args: argparse.Namespace) -> None:
    todo = jobs(args)
    if args.teacher != DEFAULT_TEACHER:
        return _vocoded(args, todo)

    from kdtts.audio import write_wav
    from kdtts.engine import Engine, Mix
    from kdtts.text import TextError

    engine = Engine.load(args.voice, args.student, args.threads, require_student=args.model == "student")
    mix = Mix.of(args.model)
    if args.model == "student" and args.durations == "teacher":  # sample-aligned with the teacher's reading
        mix = Mix(duration="teacher", front="student", decoder="student")
    scales = engine.teacher.default_scales
    if args.deterministic:
        scales = scales.deterministic()
    audio_seconds = compute_seconds = 0.0
    for text, path, source in _progress(todo, f"synth ({args.model})"):
        start = time.perf_counter()
        try:
            result = engine.synthesize(text, mix, scales)
        except TextError as error:
            fail(f"{source}: {error}")
        compute_seconds += time.perf_counter() - start
        audio_seconds += result.seconds
        write_wav(path, result.audio, result.sample_rate)
    print(json.dumps({"model": args.model, "utterances": len(todo), "audio_seconds": round(audio_seconds, 3),
                      "compute_seconds": round(compute_seconds, 4),
                      "rtf": round(compute_seconds / max(audio_seconds, 1e-9), 5)}))


def _vocoded(args: argparse.Namespace, todo: list[tuple[str, Path, str]]) -> None:
    """--model teacher: the vocoder teacher; --model student: the student vocoder; both on the same mel."""
    from kdtts.audio import write_wav
    from kdtts.text import TextError

    pair = vocoder_pair(args)
    if args.model == "student" and pair.student is None:
        fail("no student vocoder yet (assets/vocoder.safetensors); train one with "
             f"`python -m kdtts distill --teacher {args.teacher} --out runs/vocoder` or pass --student PATH")
    audio_seconds = compute_seconds = 0.0
    for text, path, source in _progress(todo, f"synth ({args.teacher}, {args.model})"):
        try:
            result = pair.synthesize(text, args.model)
        except TextError as error:
            fail(f"{source}: {error}")
        compute_seconds += result.timings["vocoder"]
        audio_seconds += result.seconds
        write_wav(path, result.audio, result.sample_rate)
    print(json.dumps({"teacher": args.teacher, "model": args.model, "utterances": len(todo),
                      "audio_seconds": round(audio_seconds, 3), "vocoder_seconds": round(compute_seconds, 4),
                      "vocoder_rtf": round(compute_seconds / max(audio_seconds, 1e-9), 5)}))
