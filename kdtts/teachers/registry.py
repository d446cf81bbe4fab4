"""Every teacher kdtts knows, by name: what kind it is, whether its weights are here, and why not.

The CLI (`--teacher NAME`, `info`) and the app's teacher selector read this one table, so a teacher that
cannot run here is refused with the same one-line reason everywhere.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TEACHER = "piper-joe"


@dataclass(frozen=True)
class TeacherEntry:
    name: str
    title: str              # how the app names it
    kind: str               # "module-wise VITS" | "vocoder" | "acoustic model + vocoder" (kdtts.families by kind)
    student: str            # what is distilled from it
    why_missing: Callable[[], str | None]  # None when it can run here, else what to do
    count: Callable[[], int]                # parameters, counted from the architecture (no weights needed)

    def availability(self) -> str | None:
        return self.why_missing()

    def parameters(self) -> int:
        return self.count()


def _piper_missing() -> str | None:
    from kdtts.teachers.piper import default_voice

    try:
        path = default_voice()
    except (ImportError, FileNotFoundError) as error:
        return str(error)
    return None if Path(path).exists() else f"the Piper voice is not at {path}"


def _hifigan_missing(generator: str) -> Callable[[], str | None]:
    def check() -> str | None:
        from kdtts.teachers.hifigan_weights import availability

        return availability(generator)
    return check


TACOTRON_BUNDLE = "TACOTRON2_WAVERNN_CHAR_LJSPEECH"


def _on_meta(build: Callable[[], object]) -> int:
    import torch

    with torch.device("meta"):
        return sum(p.numel() for p in build().parameters())


def _piper_count() -> int:
    import onnx

    from kdtts.teachers.piper import default_voice
    from kdtts.teachers.piper_graph import count_parameters

    return count_parameters(onnx.load(str(default_voice())))


def _hifigan_count() -> int:
    from kdtts.teachers.hifigan import HiFiGANConfig, HiFiGANGenerator

    return _on_meta(lambda: HiFiGANGenerator(HiFiGANConfig()))


def _tacotron_count() -> int:
    from torchaudio.models import Tacotron2, WaveRNN

    from kdtts.teachers.tacotron import _bundle

    bundle = _bundle(TACOTRON_BUNDLE)
    return _on_meta(lambda: Tacotron2(**bundle._tacotron2_params)) + _on_meta(lambda: WaveRNN(**bundle._wavernn_params))


TACOTRON_FILES = ("tacotron2_english_characters_1500_epochs_wavernn_ljspeech.pth",
                  "wavernn_10k_epochs_8bits_ljspeech.pth")
"""The bundle's weight files as torchaudio names them in torch.hub's cache (tests/test_tacotron.py checks the
names against torchaudio's bundle): written out so that asking whether the teacher can run imports no torch."""


def torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub"


def _tacotron_missing() -> str | None:
    """Available only once torchaudio has cached the bundle's weights (it downloads them on first use)."""
    checkpoints = torch_hub_dir() / "checkpoints"
    if all((checkpoints / name).exists() for name in TACOTRON_FILES):
        return None
    return ("Tacotron 2 + WaveRNN weights download from download.pytorch.org on first use; run once where the "
            f"internet is reachable (e.g. a Hugging Face Space) and they are cached in {checkpoints}")


TEACHERS: dict[str, TeacherEntry] = {e.name: e for e in (
    TeacherEntry("piper-joe", "Piper joe (module-wise VITS)", "module-wise VITS",
                 "the text-to-speech student (durations, front, decoder)", _piper_missing, _piper_count),
    TeacherEntry("hifigan", "HiFi-GAN V1 vocoder (universal)", "vocoder", "the student vocoder (mel -> audio)",
                 _hifigan_missing("universal"), _hifigan_count),
    TeacherEntry("hifigan-ljspeech", "HiFi-GAN V1 vocoder (LJSpeech)", "vocoder",
                 "the student vocoder (mel -> audio)", _hifigan_missing("LJSpeech"), _hifigan_count),
    TeacherEntry("tacotron2-wavernn", "Tacotron 2 + WaveRNN (LJSpeech)", "acoustic model + vocoder",
                 "a student vocoder for its WaveRNN mels (hop 275)", _tacotron_missing, _tacotron_count),
)}


class TeacherChoiceError(ValueError):
    """An unknown teacher name, or one that cannot run here; the message is the one line to show."""


def teacher_entry(name: str) -> TeacherEntry:
    """The entry for `name`, or TeacherChoiceError naming the choices."""
    if name not in TEACHERS:
        raise TeacherChoiceError(f"unknown teacher {name!r}; choose from {', '.join(TEACHERS)}")
    return TEACHERS[name]


def require(name: str) -> TeacherEntry:
    """The entry for a teacher that can run here, else TeacherChoiceError with the reason."""
    entry = teacher_entry(name)
    reason = entry.availability()
    if reason:
        raise TeacherChoiceError(f"teacher {name} ({entry.title}) is unavailable here: {reason}")
    return entry


def generator_name(name: str) -> str:
    """The HiFi-GAN generator a vocoder teacher's name stands for."""
    return "LJSpeech" if name == "hifigan-ljspeech" else "universal"
