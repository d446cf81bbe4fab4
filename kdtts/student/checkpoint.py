"""Student checkpoints: one `.safetensors` file whose header carries the JSON config.

Never pickle: `safetensors` cannot run code on load. A file that is a pickle, truncated, or built
for another architecture is refused with a message saying which.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kdtts.student.header import (  # noqa: F401 - re-exported: the loaders' callers import them from here
    ASSETS,
    FORMAT,
    KIND_NAMES,
    SHIPPED_STUDENT,
    SHIPPED_VOCODER,
    TIERS,
    VOCODER_FORMAT,
    CheckpointError,
    read_metadata,
    student_path,
)
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig
from kdtts.student.vocoder import VocoderConfig, VocoderStudent

# what each format's header config builds: a TTS student, or a student vocoder (mel -> audio)
FORMATS: dict[str, tuple[type, type]] = {FORMAT: (StudentConfig, StudentTTS),
                                         VOCODER_FORMAT: (VocoderConfig, VocoderStudent)}


def save_student(model: StudentTTS | VocoderStudent, path: str | Path, info: dict | None = None,
                 half: bool = True) -> Path:
    """Write weights (fp16 by default: half the bytes, inaudible difference) and config atomically;
    a VocoderStudent is written in the vocoder format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
               for k, v in model.state_dict().items()}
    fmt = VOCODER_FORMAT if isinstance(model, VocoderStudent) else FORMAT
    metadata = {"format": fmt, "config": json.dumps(asdict(model.config)), "info": json.dumps(info or {})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


# Bounds on every architecture number a checkpoint header may carry: a header is untrusted input, and
# a huge value would make the loader allocate gigabytes before any weight is read.
CONFIG_BOUNDS: dict[str, tuple[int, int]] = {
    "n_symbols": (1, 4096), "z_channels": (1, 1024), "sample_rate": (8000, 96000), "hop_length": (16, 2048),
    "n_fft": (32, 8192), "duration_channels": (1, 1024), "duration_layers": (0, 32), "front_channels": (1, 1024),
    "front_phoneme_layers": (0, 32), "front_frame_layers": (0, 32),
    "front_attention_layers": (0, 16), "front_heads": (1, 64), "front_dilated_layers": (0, 8),
    "front_phoneme_channels": (0, 1024), "front_relative_window": (0, 64),
    "front_phoneme_repeats": (1, 8), "decoder_channels": (1, 1024),
    "decoder_layers": (0, 32), "decoder_mult": (1, 16), "decoder_repeats": (1, 4),
    "n_mels": (1, 512)}

CONFIG_FLAGS = {"front_mean_head", "front_duration_input"}


def checked_config(path: Path, raw: dict, cls: type = StudentConfig) -> StudentConfig | VocoderConfig:
    """A config of `cls` from a header, or CheckpointError naming the file and the bad key."""
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise CheckpointError(f"{path.name} has config keys this kdtts does not know: {sorted(unknown)}")
    for key, value in raw.items():
        if key in CONFIG_FLAGS:
            if not isinstance(value, bool):
                raise CheckpointError(f"{path.name}: config {key}={value!r} is not true or false.")
            continue
        low, high = CONFIG_BOUNDS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CheckpointError(f"{path.name}: config {key}={value!r} is not an integer in [{low}, {high}].")
    config = cls(**raw)
    if config.n_fft < 2 * config.hop_length:
        raise CheckpointError(f"{path.name}: config n_fft={config.n_fft} must be at least twice hop_length.")
    phoneme_channels = getattr(config, "front_phoneme_channels", 0) or getattr(config, "front_channels", 0)
    if getattr(config, "front_attention_layers", 0) and phoneme_channels % config.front_heads:
        raise CheckpointError(f"{path.name}: the front's phoneme-rate width {phoneme_channels} must be divisible by "
                              f"front_heads={config.front_heads}.")
    return config


def _check_shapes(path: Path, config: StudentConfig | VocoderConfig, model: type) -> None:
    """Compare every tensor's shape in the header with the architecture, before allocating either."""
    from safetensors import safe_open

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in model(config).state_dict().items()}
    with safe_open(str(path), "pt") as f:
        stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    missing, extra = set(expected) - set(stored), set(stored) - set(expected)
    if missing or extra:
        raise CheckpointError(f"{path.name} does not match the student architecture: "
                              f"missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
    for key, shape in stored.items():
        if shape != expected[key]:
            raise CheckpointError(f"{path.name}: {key} has shape {shape}, the config implies {expected[key]}")


def load_checkpoint(path: str | Path, expect: str | None = None) -> StudentTTS | VocoderStudent:
    """Load any kdtts checkpoint (a TTS student or a student vocoder) in float32 on PyTorch, eval mode;
    with `expect` (a format), a file of the other kind is a CheckpointError that says which it is."""
    path = Path(path)
    if not path.exists():
        how = "distill --teacher hifigan" if expect == VOCODER_FORMAT else "distill"
        raise CheckpointError(f"No student checkpoint at {path}. Train one with `python -m kdtts {how}` "
                              "or pass --student PATH.")
    meta = read_metadata(path)
    if expect and meta["format"] != expect:
        raise CheckpointError(f"{path.name} is {KIND_NAMES[meta['format']]}, not {KIND_NAMES[expect]}.")
    config_cls, model_cls = FORMATS[meta["format"]]
    config = checked_config(path, meta["config"], config_cls)
    _check_shapes(path, config, model_cls)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path.name} is corrupt or truncated: {error}") from None
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path.name}: {key} holds NaN or infinite values; the checkpoint is damaged.")
    model = model_cls(config)
    expected = model.state_dict()
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.info = meta["info"]
    model.path = path
    return model.eval()


def load_student(path: str | Path | None = None) -> StudentTTS:
    """Load a TTS student (a tier name or a path; the shipped small tier by default); for inference speed use
    kdtts.student.onnx_student.load_fast."""
    return load_checkpoint(student_path(path), expect=FORMAT)


def load_vocoder(path: str | Path | None = None) -> VocoderStudent:
    """Load a student vocoder (the shipped one by default)."""
    return load_checkpoint(Path(path) if path else SHIPPED_VOCODER, expect=VOCODER_FORMAT)


MODULE_PREFIXES = ("duration_", "front_", "decoder_")


def compose(parts: dict[str, str | Path]) -> StudentTTS:
    """One student from modules of several checkpoints of the same architecture, e.g. the duration and
    front of a regression run with the decoder of a GAN run: {"duration": A, "front": A, "decoder": B}."""
    for module in ("duration", "front", "decoder"):
        if module not in parts:
            raise CheckpointError(f"compose needs a checkpoint for every module; {module} is missing")
    loaded = {module: load_student(path) for module, path in parts.items()}
    shared = {json.dumps({k: v for k, v in asdict(m.config).items() if not k.startswith(MODULE_PREFIXES)},
                         sort_keys=True) for m in loaded.values()}
    if len(shared) > 1:
        raise CheckpointError(f"cannot compose checkpoints with different shared settings (symbols, z, audio): "
                              f"{sorted(str(p) for p in parts.values())}")
    # each module's own settings come from the checkpoint that module is taken from
    config = {k: v for module, m in loaded.items() for k, v in asdict(m.config).items()
              if not k.startswith(MODULE_PREFIXES) or k.startswith(module)}
    student = StudentTTS(StudentConfig(**config))
    for module in ("duration", "front", "decoder"):
        getattr(student, module).load_state_dict(getattr(loaded[module], module).state_dict())
    student.info = {"composed_from": {m: {"file": Path(p).name, "steps": loaded[m].info.get("steps"),
                                          "adversarial_steps": loaded[m].info.get("adversarial_steps")}
                                      for m, p in parts.items()},
                    "teacher": loaded["decoder"].info.get("teacher")}
    return student.eval()
