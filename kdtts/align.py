"""Time alignment: dynamic time warping, and per-phoneme durations of a recording read along a
teacher's timing (the teacher's frames mapped onto the recording's)."""
from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from kdtts.audio import AudioSpec, log_mel


def dtw_path(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost monotonic alignment (steps (1,0), (0,1), (1,1)) through a [N, M] cost matrix."""
    n, m = cost.shape
    acc = np.empty((n, m))
    acc[0] = np.cumsum(cost[0])
    for i in range(1, n):
        # best of (i-1, j) and (i-1, j-1), then the horizontal run within row i as a min-plus scan
        diag = np.concatenate(([np.inf], acc[i - 1, :-1]))
        tmp = cost[i] + np.minimum(acc[i - 1], diag)
        csum = np.cumsum(cost[i])
        acc[i] = csum + np.minimum.accumulate(tmp - csum)
    i, j, path = n - 1, m - 1, [(n - 1, m - 1)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            step = int(np.argmin((acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])))
            i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
        path.append((i, j))
    return path[::-1]


def align_durations(teacher_audio: np.ndarray, teacher_durations: np.ndarray, recording: np.ndarray,
                    spec: AudioSpec) -> tuple[np.ndarray, float]:
    """Per-phoneme frame counts for `recording`, from a DTW between its log-mel and the teacher's
    reading of the same text (whose per-phoneme durations are known); and the alignment's mean cost
    per path step (mean-normalised log-mel L1 per band: about 0.3 for a close match, higher when poor).

    The durations sum to the recording's frames (len(recording) // hop), so the recording, cut to that
    length, is frame-aligned with anything the teacher computes for those durations."""
    a = log_mel(teacher_audio, spec).numpy().T          # [T, mels]
    b = log_mel(recording, spec).numpy().T              # [R, mels]
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)       # a level or channel difference is not a mismatch
    cost = cdist(a, b, "cityblock") / a.shape[1]          # [T, R], without a [T, R, mels] temporary
    path = dtw_path(cost)
    first_match = np.full(len(a), -1)
    for i, j in path:
        if first_match[i] < 0:
            first_match[i] = j
    starts = np.concatenate(([0], np.cumsum(teacher_durations)[:-1])).astype(int)
    starts_r = np.where(starts < len(a), first_match[np.minimum(starts, len(a) - 1)], len(b))
    bounds = np.maximum.accumulate(np.append(starts_r, len(b)))  # (phonemes after the last frame: empty)
    bounds[0] = 0
    return np.diff(bounds).astype(np.int64), float(np.mean([cost[i, j] for i, j in path]))


def mel_distance(reference: np.ndarray, other: np.ndarray, spec: AudioSpec) -> float:
    """Mean log-mel L1 per band between two readings after DTW (0 for identical audio): a distance that
    also compares readings of different lengths."""
    a, b = log_mel(reference, spec).numpy().T, log_mel(other, spec).numpy().T
    cost = cdist(a, b, "cityblock") / a.shape[1]
    return float(np.mean([cost[i, j] for i, j in dtw_path(cost)]))
