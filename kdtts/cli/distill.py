"""`distill`: a student from the teacher, or with a vocoder `--teacher` a student vocoder.

Its flags are generated from the run's config dataclass (kdtts.distill.config.DistillConfig, or
kdtts.distill.vocoder.VocoderDistillConfig with a vocoder teacher); a config file's keys are the same names."""
from __future__ import annotations

import argparse
import json

from kdtts.cli.common import add_teacher, chosen_teacher
from kdtts.cli.errors import fail
from kdtts.teachers.registry import DEFAULT_TEACHER


def add_run_arguments(p: argparse.ArgumentParser, cls: type) -> None:
    """--config, --out, --resume and one flag per field of `cls` (distill and adversarial)."""
    from kdtts.distill.config import add_arguments as add_config_arguments

    p.add_argument("--config", help=f"JSON file of {cls.__name__} keys; the flags below override it")
    p.add_argument("--out", required=True, help="run folder (checkpoints, curves, samples)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.safetensors")
    add_config_arguments(p.add_argument_group(f"run settings ({cls.__module__}.{cls.__name__})"), cls)


def read_config(cls: type, args: argparse.Namespace):
    """The run's config: the file, then the flags; a bad file or value is one line naming the file."""
    from kdtts.distill.config import from_file, overrides

    try:
        return from_file(cls, args.config, overrides(args, cls))
    except (OSError, ValueError, TypeError) as error:
        fail(f"bad config {args.config or ''}: {error}")


def _config_class(teacher: str) -> type:
    if teacher != DEFAULT_TEACHER:
        from kdtts.distill.vocoder import VocoderDistillConfig

        return VocoderDistillConfig
    from kdtts.distill.config import DistillConfig

    return DistillConfig


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    teacher = chosen_teacher(argv)
    if teacher == DEFAULT_TEACHER:  # the vocoder run's config has a `teacher` field: its flag comes from there
        add_teacher(p)
        p.add_argument("--recipe", help="run every stage of a recipe (small, base, finetune, or a recipe .json) into "
                                        "--out: cache, duration, front, decoder, adversarial, compose, export, evaluate")
        p.add_argument("--hours", type=float, help="--recipe: wall-clock budget for the whole recipe, teacher "
                                                   "included; steps and corpus are scaled to fit it")
    add_run_arguments(p, _config_class(teacher))


def run(args: argparse.Namespace) -> None:
    if args.teacher != DEFAULT_TEACHER:
        return _vocoder(args)
    if args.recipe:
        return _recipe(args)
    from kdtts.distill.config import DistillConfig
    from kdtts.distill.train import distill

    out = distill(read_config(DistillConfig, args), args.out, resume=args.resume)
    print(json.dumps({"student": str(out)}))


def _recipe(args: argparse.Namespace) -> None:
    """`distill --recipe NAME`: every stage in order (kdtts.distill.recipe); of the run flags only
    --voice, --cache-dir and --init (a student to start from) apply."""
    import os
    import shlex
    import sys
    from pathlib import Path

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


def _vocoder(args: argparse.Namespace) -> None:
    from kdtts.distill.vocoder import VocoderDistillConfig, distill_vocoder, prepare_vocoder_data
    from kdtts.teachers.registry import require

    require(args.teacher)
    cfg = read_config(VocoderDistillConfig, args)
    if not cfg.teacher.startswith("hifigan"):
        fail(f"distilling from {cfg.teacher} is not supported: kdtts distils a student vocoder from HiFi-GAN V1 "
             "(--teacher hifigan or hifigan-ljspeech)")
    prepare_vocoder_data(cfg)
    out = distill_vocoder(cfg, args.out, resume=args.resume)
    print(json.dumps({"vocoder": str(out)}))
