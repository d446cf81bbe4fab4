"""DistillConfig: everything a distillation run needs, in one dataclass.

A JSON file with any subset of these (flat) keys overrides the defaults; the command line's flags are
generated from the fields (`add_arguments`), with the help text kept in each field's metadata.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

MODULES = ("duration", "front", "decoder")


def config_field(default: object, help: str, **kwargs: object):  # `help`: argparse's word
    """A field with its help text; a callable default (a type or a lambda) is a default factory."""
    if callable(default):
        return field(default_factory=default, metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class DistillConfig:
    """One distillation run (the CLI's `distill`, and every fine-tune the app starts)."""

    # the teacher and the text it reads (its outputs are cached once per voice and temperature)
    cache_dir: str = config_field("cache/joe-t0", "folder of the teacher's cached outputs")
    sentences: int = config_field(3000, "sentences of the built-in corpus the teacher reads (the cache only grows)")
    temperature: float = config_field(0.0, "teacher noise multiplier, the KD temperature (0: the teacher's mean)")
    extra_text: str | None = config_field(None, "a text file of your own sentences, one per line, added to the corpus")
    voice: str | None = config_field(None, "teacher Piper voice .onnx (default: en_US-joe-medium)")
    data: str | None = config_field(None, "recordings (LJSpeech-style folder: metadata.csv + wavs/) for the ground-truth "
                                    "term; the student then trains on them, with the teacher's reading of the same text")
    max_alignment_cost: float = config_field(0.8, "recordings whose alignment to the teacher costs more are skipped")
    # what is trained
    alpha: float = config_field(1.0, "weight of the teacher term; 1 - alpha weighs the recordings (with --data)")
    modules: list[str] = config_field(lambda: list(MODULES), "student modules to train", nargs="+", choices=MODULES)
    init: str | None = config_field(None, "start from this student checkpoint (a fine-tune); none: a fresh student")
    front_audio_weight: float = config_field(0.0, "end-to-end front term: the front's z through the student decoder, "
                                             "against the teacher's audio of the same frames (0: off)")
    front_mean_weight: float = config_field(0.0, "a mean-head front's per-phoneme z against the teacher's z averaged "
                                                 "over each phoneme (L1, frame-weighted)")
    front_variance_weight: float = config_field(0.0, "front: weight of the term that matches the spread of z over "
                                                     "time (and of its frame-to-frame changes) to the teacher's, "
                                                     "against over-smoothed prosody (0: off)")
    wrapped_phase_weight: float = config_field(0.0, "decoder: weight of the anti-wrapping phase term beside "
                                                    "MR-STFT + log-mel (the teacher's phase, magnitude-weighted)")
    student: dict = config_field(dict, "StudentConfig overrides for a fresh student (JSON)", type=json.loads)
    # optimisation
    max_steps: int = config_field(20000, "training steps")
    batch_utts: int = config_field(16, "utterance windows per step (duration and front students)")
    crop_ids: int = config_field(64, "window length in phoneme ids (about 1.5 s of speech)")
    batch_segments: int = config_field(16, "z/audio segments per step (decoder student)")
    segment_frames: int = config_field(32, "frames per decoder segment")
    lr: float = config_field(1e-3, "peak learning rate (after warm-up)")
    lr_min: float = config_field(1e-4, "learning rate at the end of the cosine schedule")
    warmup_steps: int = config_field(200, "linear warm-up steps")
    validation_utts: int = config_field(32, "first cache utterances, never trained on, for the validation loss")
    grow_with_cache: bool = config_field(False, "pick up utterances a concurrent teacher run appends to the cache")
    checkpoint_every: int = config_field(500, "steps between validation, state and best-checkpoint saves")
    sample_every: int = config_field(2000, "steps between listening samples")
    seed: int = config_field(0, "random seed")
    threads: int | None = config_field(None, "torch intra-op threads (default: torch's choice)")

    @classmethod
    def from_file(cls, path: str | Path | None, **overrides: object) -> DistillConfig:
        return from_file(cls, path, overrides)


def from_file(cls: type, path: str | Path | None, overrides: dict):
    """Any run config (DistillConfig, AdversarialConfig, VocoderDistillConfig) from a JSON file of its keys,
    with the flags given on the command line on top; unknown keys are a ValueError naming them."""
    data = json.loads(Path(path).read_text()) if path else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**data)


def add_arguments(parser: argparse.ArgumentParser, cls: type = DistillConfig) -> None:
    """One `--flag` per field (default None: only flags given override the config file)."""
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = f.metadata.get("type") or (f.type if isinstance(f.type, type) else None)
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        options = {k: f.metadata[k] for k in ("nargs", "choices") if k in f.metadata}
        if kind is None:  # "int | None" and friends, written as strings under postponed annotations
            kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
        parser.add_argument(flag, type=kind, default=None, help=help_text, **options)


def overrides(args: argparse.Namespace, cls: type = DistillConfig) -> dict:
    """The fields given on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
