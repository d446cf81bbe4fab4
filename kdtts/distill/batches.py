"""Training batches from the teacher cache: utterance windows (duration, front) and aligned z/audio
segments (decoder). Frame t of z lines up with samples [t * hop, (t + 1) * hop) of the audio."""
from __future__ import annotations

import random

import torch

from kdtts.distill.data import Utt
from kdtts.distill.trainer import Targets


def crop(u: Utt, max_ids: int, hop: int, rng: random.Random) -> Utt:
    """A random window of at most `max_ids` phoneme ids with its frames: the students' receptive
    fields span a few phonemes, so whole utterances (mostly padding in a batch) buy nothing."""
    if len(u.ids) <= max_ids:
        return u
    start = rng.randint(0, len(u.ids) - max_ids)
    ends = u.durations.cumsum(0)
    first = int(ends[start - 1]) if start else 0
    last = int(ends[start + max_ids - 1])
    window = slice(start, start + max_ids)
    return Utt(u.ids[window], u.durations[window], u.z[:, first:last], u.audio[first * hop:last * hop],
               None if u.teacher_durations is None else u.teacher_durations[window],
               None if u.gt_audio is None else u.gt_audio[first * hop:last * hop])


def utterance_batch(utts: list[Utt], device: torch.device) -> tuple[torch.Tensor, Targets, Targets | None]:
    """Padded ids [B, N], the teacher's targets (durations [B, N], z [B, C, T] and their masks), and for
    recordings the ground truth (their own durations) or None. The front is fed `durations` (the
    timing z follows); the teacher's duration target is its own timing where that differs."""
    n = max(len(u.ids) for u in utts)
    t = max(int(u.durations.sum()) for u in utts)
    ids = torch.zeros(len(utts), n, dtype=torch.long)
    durations = torch.zeros(len(utts), n, dtype=torch.long)
    teacher_durations = torch.zeros(len(utts), n, dtype=torch.long)
    z = torch.zeros(len(utts), utts[0].z.shape[0], t)
    id_mask = torch.zeros(len(utts), 1, n)
    frame_mask = torch.zeros(len(utts), 1, t)
    for i, u in enumerate(utts):
        frames = int(u.durations.sum())
        ids[i, :len(u.ids)] = u.ids
        durations[i, :len(u.ids)] = u.durations
        teacher_durations[i, :len(u.ids)] = u.durations if u.teacher_durations is None else u.teacher_durations
        z[i, :, :frames] = u.z.float()
        id_mask[i, :, :len(u.ids)] = 1
        frame_mask[i, :, :frames] = 1
    id_mask, frame_mask = id_mask.to(device), frame_mask.to(device)
    teacher = Targets(durations=teacher_durations.to(device), id_mask=id_mask, z=z.to(device), frame_mask=frame_mask,
                      forced_durations=durations.to(device))
    recorded = all(u.gt_audio is not None for u in utts)
    truth = Targets(durations=durations.to(device), id_mask=id_mask) if recorded else None
    return ids.to(device), teacher, truth


def segment_batch(utts: list[Utt], frames: int, hop: int, rng: random.Random, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Random aligned windows: z[:, t:t+frames], the teacher's audio[t*hop:(t+frames)*hop] and the same
    window of the recordings (None unless every utterance has one)."""
    zs, audio, recorded = [], [], []
    for u in utts:
        start = rng.randint(0, max(0, u.z.shape[1] - frames))
        zs.append(_window(u.z.float(), start, frames))
        audio.append(_window(u.audio, start * hop, frames * hop))
        if u.gt_audio is not None:
            recorded.append(_window(u.gt_audio, start * hop, frames * hop))
    gt = torch.stack(recorded).to(device) if len(recorded) == len(utts) else None
    return torch.stack(zs).to(device), torch.stack(audio).to(device), gt


def audio_windows(utts: list[Utt], frames: int, hop: int, rng: random.Random, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """For the end-to-end front term: a random start frame in each utterance of an utterance batch, and the
    teacher's audio for those `frames` frames (start [B] long, audio [B, frames * hop])."""
    starts = [rng.randint(0, max(0, int(u.durations.sum()) - frames)) for u in utts]
    audio = torch.stack([_window(u.audio, s * hop, frames * hop) for u, s in zip(utts, starts)])
    return torch.tensor(starts, device=device), audio.to(device)


def _window(x: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """x[..., start:start+length], zero-padded at the end for a short utterance (silence, z of zeros)."""
    piece = x[..., start:start + length]
    return torch.nn.functional.pad(piece, (0, length - piece.shape[-1])) if piece.shape[-1] < length else piece
