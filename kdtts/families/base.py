"""The Family object: everything kdtts does with a teacher that depends on what kind of teacher it is.

A family's hooks are plain callables that import their implementation when called, so reading the registry
(the CLI's `--help`, `synth --model student`) imports neither torch nor onnx.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kdtts.distill.finetune_job import Job, JobHost
    from kdtts.distill.finetune_request import FinetuneRequest


def accept(request: FinetuneRequest) -> None:
    """A family that refuses no fine-tune request its generic checks let through."""


@dataclass(frozen=True)
class Family:
    """One teacher family: its students, how they are trained, evaluated and fine-tuned."""

    name: str                    # what the app keys the family's panels by ("tts", "vocoder")
    kinds: tuple[str, ...]       # the teacher registry's kinds it serves (kdtts.teachers.registry)
    student: str                 # its student as messages name it ("student checkpoint", "student vocoder")
    config: Callable[[], type]   # the distillation run's config dataclass: `distill`'s flags and config files
    distill_flags: Callable[[argparse.ArgumentParser], None]  # `distill` flags beyond the config's fields
    distill: Callable[[argparse.Namespace], None]   # `distill`: prepare its data, train, print the result
    evaluate: Callable[[argparse.Namespace], None]  # `evaluate`: its evaluator and report
    synth: Callable[[argparse.Namespace, Iterable], None]  # `synth` on validated (text, path, source) jobs
    finetune: Callable[[JobHost, Job], None]        # the app's fine-tune job (kdtts.distill.finetune runs it)
    finetune_bases: Callable[[JobHost], dict[str, Path]]  # the students a fine-tune may start from, by name
    check_finetune: Callable[[FinetuneRequest], None] = accept  # its own refusals of a request (ValueError)
    streams: bool = False        # `synth --output-raw`: its audio can be written as it is made
    scratch: bool = False        # the app's from-scratch preset (a small fresh student) applies
