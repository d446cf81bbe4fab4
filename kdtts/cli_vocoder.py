"""`python -m kdtts ... --teacher NAME` for the vocoder teachers: synth, distill, evaluate, and the teacher
list `info` prints. The default teacher (the Piper voice) keeps its own commands in kdtts.cli."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from tqdm import tqdm

from kdtts.cli import _fail as fail
from kdtts.teachers.registry import TEACHERS, TeacherChoiceError, require


def teachers_report() -> list[dict]:
    """Every teacher: kind, what is distilled from it, and whether it can run here (else why not)."""
    rows = []
    for entry in TEACHERS.values():
        reason = entry.availability()
        row = {"name": entry.name, "title": entry.title, "kind": entry.kind, "parameters": entry.parameters(),
               "distils": entry.student, "available": reason is None}
        if reason:
            row["unavailable_because"] = reason
        rows.append(row)
    return rows


def vocoder_student_report() -> dict:
    import os

    from kdtts.student.checkpoint import SHIPPED_VOCODER, CheckpointError, load_vocoder

    try:
        vocoder = load_vocoder()
    except CheckpointError as error:
        return {"error": str(error)}
    return {"parameters": vocoder.count_parameters()["total"], "bytes": os.path.getsize(SHIPPED_VOCODER),
            "path": str(SHIPPED_VOCODER), "steps": vocoder.info.get("steps"),
            "adversarial_steps": vocoder.info.get("adversarial_steps")}


def _pair(args: argparse.Namespace):
    from kdtts.student.checkpoint import CheckpointError
    from kdtts.vocoding import VocoderPair

    try:
        return VocoderPair.load(args.teacher, args.student, args.voice, getattr(args, "threads", None))
    except (TeacherChoiceError, CheckpointError) as error:
        fail(str(error))


def synth_vocoded(args: argparse.Namespace, jobs: list[tuple[str, Path, str]]) -> None:
    """--model teacher: the vocoder teacher; --model student: the student vocoder; both on the same mel."""
    from kdtts.audio import write_wav
    from kdtts.text import TextError

    pair = _pair(args)
    if args.model == "student" and pair.student is None:
        fail("no student vocoder yet (assets/vocoder.safetensors); train one with "
             f"`python -m kdtts distill --teacher {args.teacher} --out runs/vocoder` or pass --student PATH")
    audio_seconds = compute_seconds = 0.0
    for text, path, source in tqdm(jobs, desc=f"synth ({args.teacher}, {args.model})", unit="utt",
                                   disable=len(jobs) < 2, file=sys.stderr):
        try:
            result = pair.synthesize(text, args.model)
        except TextError as error:
            fail(f"{source}: {error}")
        compute_seconds += result.timings["vocoder"]
        audio_seconds += result.seconds
        write_wav(path, result.audio, result.sample_rate)
    print(json.dumps({"teacher": args.teacher, "model": args.model, "utterances": len(jobs),
                      "audio_seconds": round(audio_seconds, 3), "vocoder_seconds": round(compute_seconds, 4),
                      "vocoder_rtf": round(compute_seconds / max(audio_seconds, 1e-9), 5)}))


def distill_vocoded(args: argparse.Namespace) -> None:
    from kdtts.distill.config import from_file, overrides
    from kdtts.distill.vocoder import VocoderDistillConfig, distill_vocoder, prepare_vocoder_data
    from kdtts.student.checkpoint import CheckpointError

    try:
        require(args.teacher)
        cfg = from_file(VocoderDistillConfig, args.config, overrides(args, VocoderDistillConfig))
    except TeacherChoiceError as error:
        fail(str(error))
    except (OSError, ValueError, TypeError) as error:
        fail(f"bad config {args.config or ''}: {error}")
    if not cfg.teacher.startswith("hifigan"):
        fail(f"distilling from {cfg.teacher} is not supported: kdtts distils a student vocoder from HiFi-GAN V1 "
             "(--teacher hifigan or hifigan-ljspeech)")
    try:
        prepare_vocoder_data(cfg)
        out = distill_vocoder(cfg, args.out, resume=args.resume)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        fail(str(error))
    print(json.dumps({"vocoder": str(out)}))


def evaluate_vocoded(args: argparse.Namespace) -> None:
    from kdtts.distill.corpus import read_heldout
    from kdtts.evaluate.vocoder import evaluate_vocoder

    started = time.perf_counter()
    pair = _pair(args)
    texts = read_heldout(Path(args.text_file)) if args.text_file else read_heldout()
    try:
        report = evaluate_vocoder(pair, texts[:args.limit], Path(args.out), args.speed_sentences, args.repeats,
                                  "python -m kdtts " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    except FileNotFoundError as error:
        fail(str(error))
    print(json.dumps({"out": args.out, "summary": report["summary"],
                      "seconds": round(time.perf_counter() - started, 1)}, indent=1))
