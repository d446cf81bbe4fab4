"""`python -m kdtts`: synth, info, distill, export, evaluate."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from kdtts.teachers.registry import DEFAULT_TEACHER, TEACHERS


def _fail(message: str) -> None:
    print(f"kdtts: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _synth_jobs(args: argparse.Namespace) -> list[tuple[str, Path, str]]:
    """(text, output path, where the text came from) per utterance, every text validated first."""
    from kdtts.text import TextError, validate

    if (args.text is None) == (args.text_file is None):
        _fail("give exactly one of --text or --text-file")
    if args.text is not None and not args.out:
        _fail("--text needs --out FILE.wav")
    if args.text_file is not None and not args.out_dir:
        _fail("--text-file needs --out-dir DIR")
    if args.text is not None:
        jobs = [(args.text, Path(args.out), "--text")]
    else:
        try:
            raw = Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            _fail(f"cannot read --text-file {args.text_file}: {error}")
        lines = [(k, line.strip()) for k, line in enumerate(raw.splitlines(), 1) if line.strip()]
        if not lines:
            _fail(f"{args.text_file} has no non-empty lines to speak")
        jobs = [(line, Path(args.out_dir) / f"{i:03d}.wav", f"{args.text_file} line {k}")
                for i, (k, line) in enumerate(lines)]
    for text, _, source in jobs:  # fail fast, before any model is loaded
        try:
            validate(text)
        except TextError as error:
            _fail(f"{source}: {error}")
    return jobs


def cmd_synth(args: argparse.Namespace) -> None:
    jobs = _synth_jobs(args)
    if args.teacher != DEFAULT_TEACHER:
        from kdtts.cli_vocoder import synth_vocoded

        return synth_vocoded(args, jobs)

    from kdtts.audio import write_wav
    from kdtts.engine import Engine, Mix
    from kdtts.student.checkpoint import CheckpointError
    from kdtts.teachers.piper_graph import TeacherGraphError
    from kdtts.text import TextError

    try:
        engine = Engine.load(args.voice, args.student, args.threads, require_student=args.model == "student")
    except (CheckpointError, FileNotFoundError, ValueError, TeacherGraphError) as error:
        _fail(str(error))
    mix = Mix.of(args.model)
    if args.model == "student" and args.durations == "teacher":  # sample-aligned with the teacher's reading
        mix = Mix(duration="teacher", front="student", decoder="student")
    scales = engine.teacher.default_scales
    if args.deterministic:
        scales = scales.deterministic()
    audio_seconds = compute_seconds = 0.0
    for text, path, source in tqdm(jobs, desc=f"synth ({args.model})", unit="utt", disable=len(jobs) < 2,
                                   file=sys.stderr):
        start = time.perf_counter()
        try:
            result = engine.synthesize(text, mix, scales)
        except TextError as error:
            _fail(f"{source}: {error}")
        compute_seconds += time.perf_counter() - start
        audio_seconds += result.seconds
        write_wav(path, result.audio, result.sample_rate)
    print(json.dumps({"model": args.model, "utterances": len(jobs), "audio_seconds": round(audio_seconds, 3),
                      "compute_seconds": round(compute_seconds, 4),
                      "rtf": round(compute_seconds / max(audio_seconds, 1e-9), 5)}))


def cmd_info(args: argparse.Namespace) -> None:
    import os

    from kdtts.student.checkpoint import SHIPPED_STUDENT, CheckpointError, load_student
    from kdtts.teachers.piper import PiperTeacher
    from kdtts.teachers.piper_graph import TeacherGraphError

    path = Path(args.student) if args.student else SHIPPED_STUDENT
    try:  # the student first: a bad --student fails before the teacher is loaded
        student = load_student(path)
        student_report = {"parameters": student.count_parameters()["total"],
                          "modules": student.count_parameters(), "bytes": os.path.getsize(path),
                          "sample_rate": student.spec.sample_rate, "path": str(path), "steps": student.info.get("steps")}
    except CheckpointError as error:
        if args.student:
            _fail(str(error))
        student_report = {"error": str(error)}
    try:
        teacher = PiperTeacher.load(args.voice)
    except (FileNotFoundError, ValueError, TeacherGraphError) as error:
        _fail(str(error))
    from kdtts.cli_vocoder import teachers_report, vocoder_student_report

    report = {"teacher": {"parameters": teacher.parameters, "decoder_parameters": teacher.decoder_parameters,
                          "bytes": teacher.bytes_on_disk, "sample_rate": teacher.sample_rate,
                          "path": str(teacher.model_path)},
              "student": student_report, "teachers": teachers_report(), "vocoder_student": vocoder_student_report()}
    print(json.dumps(report, indent=1))


def cmd_distill(args: argparse.Namespace) -> None:
    if args.teacher != DEFAULT_TEACHER:
        from kdtts.cli_vocoder import distill_vocoded

        return distill_vocoded(args)
    if args.recipe:
        return distill_recipe(args)
    from kdtts.distill.config import DistillConfig, overrides
    from kdtts.distill.train import distill

    try:
        cfg = DistillConfig.from_file(args.config, **overrides(args))
    except (ValueError, TypeError, FileNotFoundError, json.JSONDecodeError) as error:
        _fail(f"bad config {args.config or ''}: {error}")
    out = distill(cfg, args.out, resume=args.resume)
    print(json.dumps({"student": str(out)}))


def distill_recipe(args: argparse.Namespace) -> None:
    """`distill --recipe NAME`: every stage in order (kdtts.distill.recipe); of the run flags only
    --voice, --cache-dir and --init (a student to start from) apply."""
    import os
    import shlex

    from kdtts.distill.recipe import Recipe, RecipeError, run_recipe

    try:
        recipe = Recipe.load(args.recipe)
        out = run_recipe(recipe, args.out, voice=args.voice, hours=args.hours, resume=args.resume,
                         cache_dir=args.cache_dir, init=args.init,
                         command="python -m kdtts " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    except (RecipeError, FileNotFoundError, json.JSONDecodeError) as error:
        _fail(str(error))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once
        print(json.dumps({"student": str(out), "report": str(Path(args.out) / "report.md"),
                          "card": str(Path(args.out) / "MODEL_CARD.md")}))


def cmd_adversarial(args: argparse.Namespace) -> None:
    from kdtts.distill.adversarial import AdversarialConfig, adversarial
    from kdtts.distill.config import from_file, overrides

    try:
        cfg = from_file(AdversarialConfig, args.config, overrides(args, AdversarialConfig))
    except (OSError, ValueError, TypeError) as error:
        _fail(f"bad config {args.config or ''}: {error}")
    out = adversarial(cfg, args.out, resume=args.resume)
    print(json.dumps({"student": str(out)}))


def cmd_compose(args: argparse.Namespace) -> None:
    from kdtts.student.checkpoint import CheckpointError, compose, save_student

    try:
        student = compose({"duration": args.duration, "front": args.front, "decoder": args.decoder})
    except CheckpointError as error:
        _fail(str(error))
    out = save_student(student, args.out, student.info)
    print(json.dumps({"student": str(out), "parameters": student.count_parameters()}))


def cmd_export(args: argparse.Namespace) -> None:
    from kdtts.student.onnx_student import export_checked

    report = export_checked(args.student, args.out)
    print(json.dumps(report))


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="text to WAV with the teacher or the student")
    p.add_argument("--model", choices=["teacher", "student"], default="teacher")
    _add_teacher(p)
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
    p.set_defaults(func=cmd_synth)


def _add_teacher(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", default=DEFAULT_TEACHER, choices=list(TEACHERS),
                   help=f"which teacher (default {DEFAULT_TEACHER}; `info` lists them with their availability); "
                        "a vocoder teacher reads the Piper teacher's mel, and its student is the student vocoder")


def _add_training(sub: argparse._SubParsersAction, teacher: str) -> None:
    """distill and adversarial: their flags are generated from their config dataclasses; with a vocoder
    `--teacher`, distill's flags are the vocoder run's (kdtts.distill.vocoder.VocoderDistillConfig)."""
    from kdtts.distill.adversarial import AdversarialConfig
    from kdtts.distill.config import DistillConfig, add_arguments
    from kdtts.distill.vocoder import VocoderDistillConfig

    vocoder = teacher != DEFAULT_TEACHER
    for name, cls, helptext, func in (
            ("distill", VocoderDistillConfig if vocoder else DistillConfig,
             "distil a student from the teacher (a student vocoder with --teacher hifigan)", cmd_distill),
            ("adversarial", AdversarialConfig, "refine a student's decoder with discriminators (GAN stage)",
             cmd_adversarial)):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--config", help=f"JSON file of {cls.__name__} keys; the flags below override it")
        p.add_argument("--out", required=True, help="run folder (checkpoints, curves, samples)")
        p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.safetensors")
        if name == "distill" and not vocoder:
            _add_teacher(p)
            p.add_argument("--recipe", help="run every stage of a recipe (small, base, or a recipe .json) into --out: "
                                            "cache, duration, front, decoder, adversarial, compose, export, evaluate")
            p.add_argument("--hours", type=float, help="--recipe: wall-clock budget for the whole recipe, teacher "
                                                       "included; steps and corpus are scaled to fit it")
        add_arguments(p.add_argument_group(f"run settings ({cls.__module__}.{cls.__name__})"), cls)
        p.set_defaults(func=func)


def _teacher_parser() -> argparse.ArgumentParser:
    """--teacher alone, read before the subcommands are built: it decides which config distill's flags are."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--teacher", default=DEFAULT_TEACHER)
    return p


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kdtts", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_synth(sub)

    p = sub.add_parser("info", help="parameters, size and paths of teacher and student (JSON)")
    p.add_argument("--voice")
    p.add_argument("--student")
    p.set_defaults(func=cmd_info)

    chosen, _ = _teacher_parser().parse_known_args(argv)
    _add_training(sub, chosen.teacher)

    p = sub.add_parser("compose", help="one student from the modules of several checkpoints")
    for module in ("duration", "front", "decoder"):
        p.add_argument(f"--{module}", required=True, help=f"checkpoint whose {module} module to take")
    p.add_argument("--out", required=True, help="the new checkpoint (.safetensors)")
    p.set_defaults(func=cmd_compose)

    p = sub.add_parser("export", help="export a student to ONNX and check it against PyTorch")
    p.add_argument("--student", help="checkpoint (default: the shipped one)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_export)

    from kdtts.evaluate.cli import add_parser as add_evaluate

    add_evaluate(sub)
    args = parser.parse_args(argv)
    args.func(args)
