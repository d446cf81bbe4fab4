"""The text-to-speech family: a module-wise VITS teacher (Piper) and the student that replaces its
duration, front and decoder (kdtts.student.model.StudentTTS); text -> durations -> z -> audio."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from kdtts.families.base import Family


def _config() -> type:
    from kdtts.distill.config import DistillConfig

    return DistillConfig


def _distill_flags(p: argparse.ArgumentParser) -> None:
    from kdtts.cli.common import add_teacher

    add_teacher(p)
    p.add_argument("--recipe", help="run every stage of a recipe (small, base, finetune, or a recipe .json) into "
                                    "--out: cache, duration, front, decoder, adversarial, compose, export, evaluate")
    p.add_argument("--hours", type=float, help="--recipe: wall-clock budget for the whole recipe, teacher "
                                               "included; steps and corpus are scaled to fit it")


def _distill(args: argparse.Namespace) -> None:
    if args.recipe:
        return _recipe(args)
    from kdtts.cli.common import read_config
    from kdtts.distill.config import DistillConfig
    from kdtts.distill.train import distill

    out = distill(read_config(DistillConfig, args), args.out, resume=args.resume)
    print(json.dumps({"student": str(out)}))


def _recipe(args: argparse.Namespace) -> None:
    """`distill --recipe NAME`: every stage in order (kdtts.distill.recipe); of the run flags only
    --voice, --cache-dir and --init (a student to start from) apply."""
    import shlex

    from kdtts.cli.errors import fail
    from kdtts.distill.recipe import Recipe, RecipeError, run_recipe

    try:
        recipe = Recipe.load(args.recipe)
        out = run_recipe(recipe, args.out, voice=args.voice, hours=args.hours, resume=args.resume,
                         cache_dir=args.cache_dir, init=args.init,
                         command="python -m kdtts " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    except (RecipeError, FileNotFoundError, json.JSONDecodeError) as error:
        fail(str(error))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once
        print(json.dumps({"student": str(out), "report": str(Path(args.out) / "report.md"),
                          "card": str(Path(args.out) / "MODEL_CARD.md")}))


def _evaluate(args: argparse.Namespace) -> None:
    from kdtts.cli.common import command_line
    from kdtts.cli.errors import fail
    from kdtts.evaluate.goals import DEFAULT_TIER, TIERS
    from kdtts.evaluate.report import HELDOUT, EvalConfig, evaluate
    from kdtts.evaluate.schema import FAMILIES as METRIC_FAMILIES
    from kdtts.student.header import SHIPPED_STUDENT, student_path

    skip = tuple(s.strip() for s in args.skip.split(",") if s.strip())
    unknown = set(skip) - set(METRIC_FAMILIES)
    if unknown:
        fail(f"--skip: unknown metric families {sorted(unknown)}; choose from {','.join(METRIC_FAMILIES)}")
    student = student_path(args.student) if args.student else (SHIPPED_STUDENT if SHIPPED_STUDENT.exists() else None)
    tier = args.tier or (args.student if args.student in TIERS else DEFAULT_TIER)
    if args.student and not student.exists():
        fail(f"no student checkpoint at {student}")
    text_file = Path(args.text_file) if args.text_file else HELDOUT
    if not text_file.exists():
        fail(f"no text file at {text_file}")
    config = EvalConfig(text_file=text_file, student=student, student_label=args.student_label, out=Path(args.out),
                        limit=args.limit, voice=Path(args.voice) if args.voice else None,
                        speed_sentences=args.speed_sentences, repeats=args.repeats, skip=skip,
                        save_audio=args.save_audio, tier=tier, command=command_line())
    report = evaluate(config)
    summary = {s: {k: m.get(k) for k in ("wer", "dnsmos_ovrl", "dnsmos_p808", "mcd_db", "pesq_wb",
                                         "f0_sd_ratio", "f0_range_ratio", "loudness_diff_lu", "rtf_1thread")}
               for s, m in report["models"].items()}
    print(json.dumps({"out": str(config.out), "models": summary}, indent=1))


def _synth(args: argparse.Namespace, todo: Iterable) -> None:
    """The teacher, the student or the student at the teacher's durations; --output-raw: PCM as it is made."""
    import numpy as np

    from kdtts.audio import pcm16, write_wav
    from kdtts.cli.common import progress
    from kdtts.cli.errors import fail
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
    for text, path, source in progress(todo, f"synth ({args.model})", quiet=args.output_raw):
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


def _finetune(host, job) -> None:
    from kdtts.distill.finetune_tts import train_tts_job

    train_tts_job(host, job)


FAMILY = Family(
    name="tts", kinds=("module-wise VITS",), student="student checkpoint", config=_config,
    distill_flags=_distill_flags, distill=_distill, evaluate=_evaluate, synth=_synth, finetune=_finetune,
    finetune_bases=lambda host: host.checkpoints(), streams=True, scratch=True)
