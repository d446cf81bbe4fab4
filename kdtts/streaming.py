"""Speech as it is made: one sentence's audio in pieces, window by window through the student's decoder.

The student's decoder is convolutional (a 3-tap input conv, then ConvNeXt blocks, then an inverse STFT),
so one frame of audio depends on a bounded number of frames of z either side of it: its receptive field.
A window of z decoded with that many extra frames each side (overlap-save) gives exactly the samples
the whole sentence's decode gives, so the stream equals the offline audio and the first piece comes
after one small window's work, not after the sentence's. A decoder without a bounded receptive field
(the teacher's) is decoded a sentence at a time. `kdtts.engine.Engine.stream` runs this per sentence.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kdtts.voice import Scales, Spoken, Voice, speak_latent

if TYPE_CHECKING:  # torch only where an architecture is measured: the onnxruntime student streams without it
    from torch import nn

    from kdtts.student.modules import DecoderStudent, StudentConfig


@dataclass(frozen=True)
class Windows:
    """Decoder windows, in frames of z (a frame is `hop` samples: 11.6 ms at 22,050 Hz and hop 256).

    The first is small, so the first audio comes soon; each later one doubles, up to `longest`, so the
    context decoded twice at every seam costs little once playback has started."""

    first: int = 16
    longest: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.first <= self.longest:
            raise ValueError(f"need 1 <= first <= longest, got {self.first}, {self.longest}")


@dataclass
class Piece:
    """Consecutive samples of one sentence; its last piece also carries the whole sentence (`spoken`)."""

    audio: np.ndarray
    spoken: Spoken | None = None


def conv_reach(decoder: DecoderStudent) -> int:
    """Frames of z either side that one spectrum frame depends on: the sum of the convolutions' reaches
    (the blocks count once per pass: `decoder_repeats` runs them again). LayerNorms and linears are per frame."""
    def reach(conv: nn.Conv1d) -> int:
        return conv.dilation[0] * (conv.kernel_size[0] - 1) // 2

    passes = 1 + len(decoder.pass_gammas)
    return reach(decoder.conv_in) + passes * sum(reach(block.dwconv) for block in decoder.blocks)


def istft_reach(n_fft: int, hop: int) -> int:
    """Spectrum frames either side that a sample depends on: frame t's window covers t*hop ± n_fft/2."""
    return math.ceil(n_fft / (2 * hop))


def receptive_field(config: StudentConfig) -> int:
    """Frames of z either side of a frame that its audio depends on (the overlap a window needs)."""
    import torch

    from kdtts.student.modules import DecoderStudent

    with torch.device("meta"):  # the architecture only: no weights are made
        decoder = DecoderStudent(config)
    return conv_reach(decoder) + istft_reach(config.n_fft, config.hop_length)


def decoder_context(voice: Voice) -> int | None:
    """The overlap `voice`'s decoder needs, or None when its receptive field is not bounded (the teacher).
    Students say it themselves (`receptive_field`: the onnxruntime student reads it from its export)."""
    return getattr(voice, "receptive_field", None)


def window_bounds(frames: int, windows: Windows = Windows()) -> list[tuple[int, int]]:
    """[start, end) frames of each window, covering 0..frames in order."""
    bounds, start, size = [], 0, windows.first
    while start < frames:
        bounds.append((start, min(frames, start + size)))
        start, size = bounds[-1][1], min(2 * size, windows.longest)
    return bounds


def decode_window(decoder: Voice, z: np.ndarray, start: int, end: int, context: int) -> np.ndarray:
    """The samples of frames [start, end) of z [C, T]: decoded with `context` frames either side (fewer
    at the ends, where the whole decode sees the same zero padding), keeping only the window's own."""
    lo, hi = max(0, start - context), min(z.shape[1], end + context)
    hop = decoder.spec.hop_length
    return decoder.decode(np.ascontiguousarray(z[:, lo:hi]))[(start - lo) * hop:(end - lo) * hop]


def decode_windows(decoder: Voice, z: np.ndarray, context: int, windows: Windows = Windows()) -> Iterator[np.ndarray]:
    """The audio of z [C, T], window by window."""
    for start, end in window_bounds(z.shape[1], windows):
        yield decode_window(decoder, z, start, end, context)


def speak_stream(ids: np.ndarray, scales: Scales, duration: Voice, latent: Voice, decoder: Voice,
                 durations: np.ndarray | None = None, windows: Windows = Windows()) -> Iterator[Piece]:
    """`kdtts.voice.speak` as it is made: durations and z for the sentence, then each decoder window as
    soon as it is decoded. The last piece's `spoken` holds the sentence's ids, durations, z, whole audio
    and module timings."""
    spoken = speak_latent(ids, scales, duration, latent, durations)
    context = decoder_context(decoder)
    frames = spoken.z.shape[1]
    bounds = [(0, frames)] if context is None else window_bounds(frames, windows)
    spoken.timings["decoder"] = 0.0
    pieces: list[np.ndarray] = []
    for k, (start, end) in enumerate(bounds):
        began = time.perf_counter()
        audio = decoder.decode(spoken.z) if context is None else decode_window(decoder, spoken.z, start, end, context)
        spoken.timings["decoder"] += time.perf_counter() - began
        pieces.append(audio)
        if k == len(bounds) - 1:
            spoken.audio = np.concatenate(pieces).astype(np.float32)
        yield Piece(audio, spoken if k == len(bounds) - 1 else None)
