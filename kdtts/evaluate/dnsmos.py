"""DNSMOS (Reddy et al., ICASSP 2022): a no-reference MOS predictor, with the ONNX models bundled in `speechmos`.

speechmos's own `run()` imports librosa only to compute the P.808 model's mel features; kdtts does not
depend on librosa, so the same bundled models are run here with those features reimplemented in numpy
(librosa.feature.melspectrogram defaults: Hann window, centred frames zero-padded, Slaney mel filters,
power_to_db with ref=max, top_db=80). Nothing is downloaded. The mel bank is librosa's, not torchaudio's
`melscale_fbanks`: torchaudio places the FFT bins on linspace(0, sr/2, n_freqs), librosa at k * sr / n_fft, and
for DNSMOS's odd n_fft = 321 those differ (49.84 Hz apart, not 50), which moves P.808 by +0.09 to +0.17 on
teacher sentences; on an even n_fft the two banks agree (tests/test_kept_libraries.py).
"""
from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from kdtts.audio import AudioSpec, resample
from kdtts.evaluate.optional import MissingEvaluator

RATE = 16000
INPUT_SECONDS = 9.01
# speechmos/dnsmos.py: cubic/quadratic maps from the raw network outputs to MOS (non-personalised model)
_POLY = {"sig": np.poly1d([-0.08397278, 1.22083953, 0.0052439]),
         "bak": np.poly1d([-0.13166888, 1.60915514, -0.39604546]),
         "ovrl": np.poly1d([-0.06766283, 1.11546468, 0.04602535])}


def model_dir() -> Path:
    """The folder of speechmos's bundled DNSMOS ONNX files, or MissingEvaluator."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise MissingEvaluator("DNSMOS needs the 'speechmos' package (it bundles the DNSMOS ONNX models), which "
                               "is not installed. `pip install speechmos`; the other metrics still run.")
    folder = Path(spec.submodule_search_locations[0]) / "dnsmos_models"
    for name in ("sig_bak_ovr.onnx", "model_v8.onnx"):
        if not (folder / name).exists():
            raise MissingEvaluator(f"DNSMOS model {folder / name} is missing from the speechmos install; "
                                   "reinstall speechmos (kdtts never downloads models at run time).")
    return folder


@lru_cache(maxsize=2)
def _sessions(threads: int | None = None):
    from kdtts.runtime import cpu_session

    folder = model_dir()
    return cpu_session(folder / "sig_bak_ovr.onnx", threads), cpu_session(folder / "model_v8.onnx", threads)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log_part = f >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (math.log(6.4) / 27.0), mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((math.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


@lru_cache(maxsize=1)
def _mel_filters(sr: int = RATE, n_fft: int = 321, n_mels: int = 120) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels): Slaney-normalised triangles up to sr/2."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return (weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]).astype(np.float32)


def p808_features(audio: np.ndarray, n_fft: int = 321, hop: int = 160) -> np.ndarray:
    """[frames, 120] features of the P.808 model: (power_to_db(mel, ref=max, top_db=80) + 40) / 40."""
    x = np.pad(np.asarray(audio, dtype=np.float32), n_fft // 2, mode="constant")
    frames = 1 + (len(x) - n_fft) // hop
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann, as scipy get_window(fftbins=True)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
    mel = power @ _mel_filters(RATE, n_fft).T
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db -= 10.0 * np.log10(max(float(mel.max()), 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    return ((db + 40.0) / 40.0).astype(np.float32)


def dnsmos(audio: np.ndarray, sample_rate: int = AudioSpec.sample_rate, threads: int | None = 1) -> dict[str, float]:
    """DNSMOS scores on the ITU-T P.835 / P.808 MOS scale (1 = bad ... 5 = excellent), no reference.

    Returns dnsmos_ovrl (overall quality), dnsmos_sig (speech signal distortion), dnsmos_bak (background
    noise intrusiveness) and dnsmos_p808 (overall, P.808 model). Audio is resampled to 16 kHz.
    A clip shorter than the models' 9.01 s input is tiled to exactly 9.01 s and scored once; longer clips
    are scored in 9.01 s windows every second and averaged. (speechmos instead doubles a short clip until
    it is >= 9.01 s and averages every window of the doubled clip: up to 5x the compute for a 3 s
    sentence, on windows that repeat the same audio.)
    """
    main, p808 = _sessions(threads)
    x = np.clip(resample(np.asarray(audio, dtype=np.float32), sample_rate, RATE), -1.0, 1.0)
    need = int(INPUT_SECONDS * RATE)
    if len(x) == 0 or not np.any(x):
        raise ValueError("DNSMOS needs non-silent audio")
    if len(x) < need:
        x = np.tile(x, -(-need // len(x)))[:need]
    hops = int(np.floor(len(x) / RATE) - INPUT_SECONDS) + 1
    scores: dict[str, list[float]] = {"sig": [], "bak": [], "ovrl": [], "p808": []}
    for k in range(hops):
        seg = x[k * RATE: k * RATE + need]
        if len(seg) < need:
            continue
        sig, bak, ovrl = main.run(None, {"input_1": seg[None].astype(np.float32)})[0][0]
        scores["p808"].append(float(p808.run(None, {"input_1": p808_features(seg[:-160])[None]})[0][0][0]))
        for key, raw in (("sig", sig), ("bak", bak), ("ovrl", ovrl)):
            scores[key].append(float(_POLY[key](raw)))
    return {f"dnsmos_{key}": float(np.mean(values)) for key, values in scores.items()}
