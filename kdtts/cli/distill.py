"""`distill`: a student from the teacher, or with a vocoder `--teacher` a student vocoder.

Its flags are generated from the teacher family's run config dataclass (kdtts.families: e.g.
kdtts.distill.config.DistillConfig, or kdtts.distill.vocoder.VocoderDistillConfig with a vocoder teacher);
a config file's keys are the same names."""
from __future__ import annotations

import argparse

from kdtts.cli.common import add_run_arguments, chosen_teacher
from kdtts.families import family_of
from kdtts.teachers.registry import DEFAULT_TEACHER, TEACHERS


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    teacher = chosen_teacher(argv)
    if teacher not in TEACHERS:  # run() refuses it with the registry's one line, as every command does
        p.add_argument("--teacher")
        return add_run_arguments(p, family_of(DEFAULT_TEACHER).config())
    family = family_of(teacher)
    family.distill_flags(p)
    add_run_arguments(p, family.config())


def run(args: argparse.Namespace) -> None:
    family_of(args.teacher).distill(args)
