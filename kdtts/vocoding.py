"""A vocoder teacher and its student vocoder on the same mel: text -> mel -> audio, either side.

The mel comes from the Piper teacher's deterministic reading of the text (re-analysed with
`kdtts.audio.log_mel`), or, for the Tacotron 2 family, from Tacotron 2 itself. Feeding both vocoders the
same mel makes their outputs sample-aligned by construction, so PESQ/STOI and a difference view need no
alignment.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kdtts.audio import log_mel
from kdtts.student.checkpoint import SHIPPED_VOCODER, CheckpointError, load_vocoder
from kdtts.student.vocoder import VocoderStudent
from kdtts.teachers.registry import TACOTRON_BUNDLE, generator_name, require
from kdtts.voice import Side


@dataclass
class Vocoded:
    mel: np.ndarray        # [80, T] natural-log mel, the input both vocoders share
    audio: np.ndarray      # float32 [T * hop]
    sample_rate: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds: "mel", "vocoder"

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def rtf(self) -> float:
        return self.timings.get("vocoder", 0.0) / max(self.seconds, 1e-9)


class VocoderPair:
    """The teacher vocoder (HiFi-GAN V1, or Tacotron 2's WaveRNN) and a student vocoder (None until one is
    trained), with the text -> mel source they share."""

    def __init__(self, name: str, mel_of: Callable[[str], np.ndarray], teacher: Callable[[np.ndarray], np.ndarray],
                 student: VocoderStudent | None, sample_rate: int, teacher_parameters: int) -> None:
        self.name, self.mel_of, self.teacher, self.student = name, mel_of, teacher, student
        self.sample_rate, self.teacher_parameters = sample_rate, teacher_parameters

    @classmethod
    def load(cls, name: str = "hifigan", student: str | Path | None = None, voice: str | Path | None = None,
             threads: int | None = None, mel_engine=None) -> VocoderPair:
        """TeacherChoiceError (one line) when the teacher cannot run here; the shipped student vocoder
        when `student` is None and it exists. `mel_engine`: a loaded kdtts.engine.Engine to reuse."""
        require(name)
        if threads:
            torch.set_num_threads(threads)
        path = Path(student) if student else SHIPPED_VOCODER
        model = load_vocoder(path) if (student or path.exists()) else None
        if name.startswith("hifigan"):
            from kdtts.teachers.hifigan import HiFiGANTeacher

            teacher = HiFiGANTeacher.load(generator_name(name))
            return cls(name, _piper_mel(mel_engine, voice, threads, teacher.spec), teacher.vocode, model,
                       teacher.spec.sample_rate, teacher.parameters)
        from kdtts.teachers.tacotron import TacotronTeacher, _bundle

        hop = _bundle(TACOTRON_BUNDLE)._wavernn_params["hop_length"]
        if model is not None and model.hop_length != hop:
            raise CheckpointError(f"{path.name} reads mels at hop {model.hop_length}; Tacotron 2 + WaveRNN's mels "
                                  f"are at hop {hop}: distil a student vocoder for that hop first")
        tacotron = TacotronTeacher.load(TACOTRON_BUNDLE)
        return cls(name, lambda text: tacotron.synthesize(text, seed=0).mel, tacotron.decode, model,
                   tacotron.sample_rate, tacotron.vocoder_parameters)

    def with_student(self, student: VocoderStudent | None) -> VocoderPair:
        """The same teacher and mel source with another student vocoder (a fine-tuned one)."""
        return VocoderPair(self.name, self.mel_of, self.teacher, student, self.sample_rate, self.teacher_parameters)

    def mel(self, text: str) -> np.ndarray:
        """Validated text (TextError for bad input) -> the mel both vocoders read."""
        return self.mel_of(text)

    def vocode(self, mel: np.ndarray, side: Side) -> Vocoded:
        if side == "student" and self.student is None:
            raise FileNotFoundError(f"No student vocoder at {SHIPPED_VOCODER}; train one with "
                                    "`python -m kdtts distill --teacher hifigan`.")
        start = time.perf_counter()
        audio = self.student.vocode(mel) if side == "student" else self.teacher(mel)
        return Vocoded(mel, np.asarray(audio, dtype=np.float32), self.sample_rate,
                       {"vocoder": time.perf_counter() - start})

    def synthesize(self, text: str, side: Side) -> Vocoded:
        start = time.perf_counter()
        mel = self.mel(text)
        mel_seconds = time.perf_counter() - start
        out = self.vocode(mel, side)
        out.timings["mel"] = mel_seconds
        return out


def _piper_mel(engine, voice: str | Path | None, threads: int | None, spec) -> Callable[[str], np.ndarray]:
    """text -> log-mel of the Piper teacher's deterministic reading (loaded on first use)."""
    state = {"engine": engine}

    def mel_of(text: str) -> np.ndarray:
        from kdtts.engine import Engine, Mix
        from kdtts.teachers.piper import PiperTeacher

        if state["engine"] is None:
            state["engine"] = Engine(PiperTeacher.load(voice, threads=threads))
        reader = state["engine"]
        audio = reader.synthesize(text, Mix.of("teacher"), reader.teacher.default_scales.deterministic()).audio
        return log_mel(audio, spec).numpy()
    return mel_of
