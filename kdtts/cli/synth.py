"""`synth`: text to WAV, one per line of a text file, ending with one JSON line of totals.

The student path (the default teacher's text front end + the exported student on onnxruntime) imports
neither torch nor onnx once the student's export and the teacher's sub-graphs are cached."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from kdtts.cli.common import add_teacher, vocoder_pair
from kdtts.cli.errors import fail
from kdtts.teachers.registry import DEFAULT_TEACHER


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    p.add_argument("--model", choices=["teacher", "student"], default="teacher")
    add_teacher(p)
    p.add_argument("--text")
    p.add_argument("--out", help="WAV file for --text")
    p.add_argument("--text-file", help="one utterance per non-empty line; '-' reads stdin, speaking each line "
                                       "as it arrives")
    p.add_argument("--out-dir", help="folder for 000.wav, 001.wav ... from --text-file")
    p.add_argument("--durations", choices=["student", "teacher"], default="student",
                   help="--model student: whose durations to use; 'teacher' makes the output sample-aligned "
                        "with the teacher's (for aligned listening and PESQ/STOI)")
    p.add_argument("--deterministic", action="store_true", help="teacher noise scales 0 (repeatable output)")
    p.add_argument("--output-raw", action="store_true",
                   help="write 16-bit mono PCM to stdout as it is made (Piper's convention: "
                        "`| aplay -r 22050 -f S16_LE -c 1`); the summary goes to stderr")
    p.add_argument("--threads", type=int, help="torch and onnxruntime intra-op threads")
    p.add_argument("--voice", help="Piper voice .onnx (default: en_US-joe-medium)")
    p.add_argument("--student", help="student checkpoint (default: assets/student.safetensors)")


Job = tuple[str, "Path | None", str]


def jobs(args: argparse.Namespace) -> Iterable[Job]:
    """(text, output path, where the text came from) per utterance, every text validated first; from
    `--text-file -`, each stdin line as it arrives (a bad line is skipped with a note on stderr)."""
    from kdtts.text import TextError, validate

    if (args.text is None) == (args.text_file is None):
        fail("give exactly one of --text or --text-file")
    if args.text is not None and not (args.out or args.output_raw):
        fail("--text needs --out FILE.wav (or --output-raw)")
    if args.text_file is not None and not (args.out_dir or args.output_raw):
        fail("--text-file needs --out-dir DIR (or --output-raw)")
    if args.text_file == "-":
        return _stdin_jobs(args)
    if args.text is not None:
        found = [(args.text, Path(args.out) if args.out else None, "--text")]
    else:
        try:
            raw = Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            fail(f"cannot read --text-file {args.text_file}: {error}")
        lines = [(k, line.strip()) for k, line in enumerate(raw.splitlines(), 1) if line.strip()]
        if not lines:
            fail(f"{args.text_file} has no non-empty lines to speak")
        found = [(line, Path(args.out_dir) / f"{i:03d}.wav" if args.out_dir else None, f"{args.text_file} line {k}")
                 for i, (k, line) in enumerate(lines)]
    for text, _, source in found:  # fail fast, before any model is loaded
        try:
            validate(text)
        except TextError as error:
            fail(f"{source}: {error}")
    return found


def _stdin_jobs(args: argparse.Namespace) -> Iterator[Job]:
    from kdtts.text import TextError, validate

    spoken = 0
    for k, line in enumerate(iter(sys.stdin.readline, ""), 1):  # readline: no read-ahead, each line when it comes
        if not line.strip():
            continue
        try:
            validate(line)
        except TextError as error:
            print(f"kdtts: stdin line {k} skipped: {error}", file=sys.stderr)
            continue
        yield line.strip(), Path(args.out_dir) / f"{spoken:03d}.wav" if args.out_dir else None, f"stdin line {k}"
        spoken += 1


def _progress(items: Iterable, desc: str, quiet: bool = False):
    from tqdm import tqdm

    shown = isinstance(items, list) and len(items) >= 2 and not quiet
    return tqdm(items, desc=desc, unit="utt", disable=not shown, file=sys.stderr)


def run(args: argparse.Namespace) -> None:
    if args.output_raw and args.teacher != DEFAULT_TEACHER:
        fail(f"--output-raw streams the {DEFAULT_TEACHER} teacher and its student; "
             f"write WAVs for --teacher {args.teacher}")
    todo = jobs(args)
    if args.teacher != DEFAULT_TEACHER:
        return _vocoded(args, list(todo))

    import numpy as np

    from kdtts.audio import pcm16, write_wav
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
    count = 0
    for text, path, source in _progress(todo, f"synth ({args.model})", quiet=args.output_raw):
        start = time.perf_counter()
        try:
            if args.output_raw:  # PCM as it is made: sentence by sentence, decoder window by window
                parts = []
                for chunk in engine.stream(text, mix, scales):
                    sys.stdout.buffer.write(pcm16(chunk.audio, engine.sample_rate))
                    sys.stdout.buffer.flush()
                    parts.append(chunk.audio)
                seconds = sum(len(part) for part in parts) / engine.sample_rate
                if path is not None:
                    write_wav(path, np.concatenate(parts), engine.sample_rate)
            else:
                result = engine.synthesize(text, mix, scales)
                seconds = result.seconds
                write_wav(path, result.audio, result.sample_rate)
        except TextError as error:
            fail(f"{source}: {error}")
        except BrokenPipeError:  # the player went away: stop quietly, as `head` does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
            raise SystemExit(0) from None
        compute_seconds += time.perf_counter() - start
        audio_seconds += seconds
        count += 1
    print(json.dumps({"model": args.model, "utterances": count, "audio_seconds": round(audio_seconds, 3),
                      "compute_seconds": round(compute_seconds, 4),
                      "rtf": round(compute_seconds / max(audio_seconds, 1e-9), 5),
                      **({"sample_rate": engine.sample_rate} if args.output_raw else {})}),
          file=sys.stderr if args.output_raw else sys.stdout)  # in raw mode stdout is the audio alone


def _vocoded(args: argparse.Namespace, todo: list[Job]) -> None:
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
