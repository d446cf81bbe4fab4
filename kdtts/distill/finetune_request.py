"""What a fine-tune asks for (FinetuneRequest), checked, and mapped to the DistillConfig it runs;
and the text it trains on: a built-in set, or a user's own sentences."""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from kdtts.distill.config import MODULES, DistillConfig
from kdtts.distill.corpus import pydoc_topics, read_heldout, template_sentences

MAX_USER_SENTENCES = 500
MAX_USER_CHARS = 20_000          # a visitor's own text: the teacher reads it all before training starts
VALIDATE_EVERY = 25              # distill()'s checkpoint_every: validation losses join the rows
RECIPES = ("finetune",)          # the recipes a visitor may run (configs/recipe_<name>.json)
MAX_RECIPE_MINUTES = 30
SCRATCH_DECODER = {"decoder_channels": 64, "decoder_layers": 2, "decoder_mult": 2}
"""The from-scratch preset's decoder: small enough to learn audibly within a couple of CPU minutes."""



class Busy(RuntimeError):
    """Another fine-tune is running."""


@dataclass
class FinetuneRequest:
    name: str = ""
    steps: int = 200
    lr: float = 3e-4
    alpha: float = 1.0
    temperature: float = 0.0
    modules: tuple[str, ...] = MODULES
    text: str = ""               # the user's sentences, one per line; empty: the built-in set
    sentences: int = 64          # size of the built-in set
    base: str | None = None      # student to start from (by name in the app); None: a fresh student
    recordings: str | None = None  # a dataset folder of recordings (kdtts.distill.recordings): y for alpha < 1
    student: dict | None = None  # StudentConfig overrides for a fresh student (the from-scratch preset)
    sample_every: int | None = None  # listening samples every N steps (None: only at the end)
    teacher: str = "piper-joe"   # a vocoder teacher (hifigan) fine-tunes the student vocoder instead
    recipe: str | None = None    # "finetune": the recipe's short form (its stages, in `minutes`); None: one regression
    minutes: float = 5.0         # the recipe's budget, teacher reading and evaluation included
    batch_utts: int = 4
    batch_segments: int = 8
    segment_frames: int = 32
    seed: int = 0

    def to_config(self, cache: Path, voice: Path, init: Path | None, spoken: int) -> DistillConfig:
        """The distillation run this request asks for, on `spoken` cached sentences (validation: a fifth,
        between 1 and 8), from `init` (None: a fresh student)."""
        steps = int(self.steps)
        return DistillConfig(
            cache_dir=str(cache), sentences=spoken, temperature=float(self.temperature), voice=str(voice),
            alpha=float(self.alpha), modules=list(self.modules), init=str(init) if init else None, max_steps=steps,
            batch_utts=int(self.batch_utts), batch_segments=int(self.batch_segments),
            segment_frames=int(self.segment_frames), lr=float(self.lr), lr_min=float(self.lr) / 10,
            warmup_steps=min(20, max(1, steps // 10)), validation_utts=max(1, min(8, spoken // 5)),
            checkpoint_every=VALIDATE_EVERY, sample_every=int(self.sample_every or steps), seed=int(self.seed),
            data=self.recordings, student=dict(self.student or {}))

    def validate(self) -> None:
        from kdtts.teachers.registry import require

        require(self.teacher)  # an unknown or unavailable teacher: TeacherChoiceError (a ValueError) says why
        if not 1 <= int(self.steps) <= 5000:
            raise ValueError("steps must be between 1 and 5000")
        if not 0 < float(self.lr) <= 0.01:
            raise ValueError("learning rate must be in (0, 0.01]")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ValueError("alpha must be in [0, 1]")
        if float(self.alpha) < 1.0 and not self.recordings:
            raise ValueError("α < 1 weighs recordings of real speech, and none are loaded: with the teacher alone "
                             "the loss is the teacher term only, so α is 1.")
        if not 0.0 <= float(self.temperature) <= 1.5:
            raise ValueError("temperature must be in [0, 1.5]")
        if not self.modules or set(self.modules) - set(MODULES):
            raise ValueError(f"choose one or more modules from {MODULES}")
        if self.recipe is not None:
            if self.recipe not in RECIPES:
                raise ValueError(f"recipe must be one of {RECIPES}")
            if not 2 <= float(self.minutes) <= MAX_RECIPE_MINUTES:
                raise ValueError(f"the recipe's budget must be between 2 and {MAX_RECIPE_MINUTES} minutes")
            if self.recordings or self.student:
                raise ValueError("the recipe's short form starts from a trained student and learns from the teacher "
                                 "alone; for recordings (α < 1) or a fresh decoder, choose one regression")
        if self.text.strip() and len(user_sentences(self.text)) < 2:
            raise ValueError("your text needs at least two sentences (one per line, or ending in . ! ?)")
        if len(self.text) > MAX_USER_CHARS:
            raise ValueError(f"your text has {len(self.text):,} characters; a fine-tune takes at most "
                             f"{MAX_USER_CHARS:,} (about {MAX_USER_SENTENCES} sentences)")


def builtin_sentences(count: int) -> list[str]:
    """Short, plain sentences from the built-in corpus sources (not the held-out set), fixed order."""
    heldout = set(read_heldout())
    pool = sorted({s for s in pydoc_topics() + template_sentences() if 5 <= len(s.split()) <= 10 and s not in heldout},
                  key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    return pool[:count]


def user_sentences(text: str) -> list[str]:
    parts = [p.strip() for line in text.splitlines() for p in re.split(r"(?<=[.!?])\s+", line)]
    return [p for p in parts if any(ch.isalpha() for ch in p)][:MAX_USER_SENTENCES]


def checkpoint_name(raw: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", raw.strip()).strip("-")[:60] or time.strftime("finetune-%Y%m%d-%H%M%S")
    name, n = base, 2
    while name in taken or name in ("shipped", "student", "small", "base"):
        name, n = f"{base}-{n}", n + 1
    return name
