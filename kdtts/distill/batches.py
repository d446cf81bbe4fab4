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
    return Utt(u.ids[start:start + max_ids], u.durations[start:start + max_ids], u.z[:, first:last],
               u.audio[first * hop:last * hop])


def utterance_batch(utts: list[Utt], device: torch.device) -> tuple[torch.Tensor, Targets]:
    """Padded ids [B, N] and the teacher's targets: durations [B, N], z [B, C, T] and their masks."""
    n = max(len(u.ids) for u in utts)
    t = max(int(u.durations.sum()) for u in utts)
    ids = torch.zeros(len(utts), n, dtype=torch.long)
    durations = torch.zeros(len(utts), n, dtype=torch.long)
    z = torch.zeros(len(utts), utts[0].z.shape[0], t)
    id_mask = torch.zeros(len(utts), 1, n)
    frame_mask = torch.zeros(len(utts), 1, t)
    for i, u in enumerate(utts):
        frames = int(u.durations.sum())
        ids[i, :len(u.ids)] = u.ids
        durations[i, :len(u.ids)] = u.durations
        z[i, :, :frames] = u.z.float()
        id_mask[i, :, :len(u.ids)] = 1
        frame_mask[i, :, :frames] = 1
    return ids.to(device), Targets(durations=durations.to(device), id_mask=id_mask.to(device),
                                   z=z.to(device), frame_mask=frame_mask.to(device))


def segment_batch(utts: list[Utt], frames: int, hop: int, rng: random.Random, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random aligned windows: z[:, t:t+frames] and audio[t*hop:(t+frames)*hop]."""
    zs, audio = [], []
    for u in utts:
        total = u.z.shape[1]
        start = rng.randint(0, max(0, total - frames))
        seg_z = u.z[:, start:start + frames].float()
        seg_a = u.audio[start * hop:(start + frames) * hop]
        if seg_z.shape[1] < frames:  # a very short utterance: pad with silence (z of zeros)
            seg_z = torch.nn.functional.pad(seg_z, (0, frames - seg_z.shape[1]))
            seg_a = torch.nn.functional.pad(seg_a, (0, frames * hop - seg_a.shape[0]))
        zs.append(seg_z)
        audio.append(seg_a)
    return torch.stack(zs).to(device), torch.stack(audio).to(device)
