"""Knowledge distillation for the module-wise student.

The classic knowledge-distillation loss (Hinton et al., 2015), made precise for TTS:

    L = (1 - alpha) * L(y, S(x)) + alpha * L(T(x), S(x))

where T(x) is the teacher's output (durations, z, audio; sampled at the cache's temperature, a
multiplier on the teacher's noise scales), y is recorded ground truth when the user has it, and
alpha = 1 when only the teacher is available.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from kdtts.audio import AudioSpec
from kdtts.distill.config import MODULES
from kdtts.distill.losses import WaveformCriterion, duration_loss, masked_l1, variance_match_loss
from kdtts.student.layers import phoneme_means
from kdtts.student.model import StudentTTS


@dataclass
class Targets:
    """What a teacher (or a recording) says for a batch; None where a module is not trained."""

    durations: torch.Tensor | None = None   # long [B, N]
    id_mask: torch.Tensor | None = None     # [B, 1, N]
    z: torch.Tensor | None = None           # [B, 192, T]
    frame_mask: torch.Tensor | None = None  # [B, 1, T]
    audio: torch.Tensor | None = None       # [B, samples] (decoder segments)
    forced_durations: torch.Tensor | None = None  # what the front is fed (teacher forcing); None: durations
    window_starts: torch.Tensor | None = None  # end-to-end front term: start frame per utterance [B]
    window_audio: torch.Tensor | None = None   # the teacher's audio for those windows [B, samples]

    @property
    def front_durations(self) -> torch.Tensor | None:
        """The durations the front is fed and `z` is aligned with."""
        return self.durations if self.forced_durations is None else self.forced_durations


@dataclass
class Predictions:
    log_durations: torch.Tensor | None = None
    z: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    front_audio: torch.Tensor | None = None  # the front's z through the frozen decoder, in the target's windows
    phoneme_means: torch.Tensor | None = None  # a mean-head front's per-phoneme z [B, 192, N]


class ModuleCriterion(nn.Module):
    """L(target, prediction) summed over the modules present, with each part reported."""

    def __init__(self, spec: AudioSpec = AudioSpec(), front_audio_weight: float = 0.0,
                 front_mean_weight: float = 0.0, wrapped_phase_weight: float = 0.0,
                 front_variance_weight: float = 0.0) -> None:
        super().__init__()
        self.front_audio_weight, self.front_mean_weight = front_audio_weight, front_mean_weight
        self.front_variance_weight = front_variance_weight
        self.waveform = WaveformCriterion(mel=spec, wrapped_phase_weight=wrapped_phase_weight)

    def forward(self, target: Targets, predicted: Predictions) -> dict[str, torch.Tensor]:
        parts: dict[str, torch.Tensor] = {}
        if predicted.log_durations is not None and target.durations is not None:
            parts["duration"] = duration_loss(predicted.log_durations, target.durations, target.id_mask)
        if predicted.z is not None and target.z is not None:
            parts["front"] = masked_l1(predicted.z, target.z.float(), target.frame_mask)
            if self.front_variance_weight:
                parts["front_variance"] = self.front_variance_weight * variance_match_loss(
                    predicted.z, target.z.float(), target.frame_mask)
        if predicted.phoneme_means is not None and target.z is not None and self.front_mean_weight:
            parts["front_mean"] = self.front_mean_weight * mean_head_loss(predicted.phoneme_means, target)
        if predicted.audio is not None and target.audio is not None:
            parts["decoder"] = self.waveform(predicted.audio, target.audio)
        if predicted.front_audio is not None and target.window_audio is not None:
            parts["front_audio"] = self.front_audio_weight * self.waveform(predicted.front_audio, target.window_audio)
        return parts


class KDTrainer:
    """Distils a StudentTTS from a teacher's outputs (read from the cache, so no teacher is held)."""

    def __init__(self, student: StudentTTS, criterion: ModuleCriterion, alpha: float = 1.0,
                 modules: tuple[str, ...] = MODULES, lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        unknown = set(modules) - set(MODULES)
        if unknown or not modules:
            raise ValueError(f"modules must be a non-empty subset of {MODULES}, got {modules}")
        self.student, self.criterion = student, criterion
        self.alpha, self.modules = alpha, tuple(modules)
        for name in MODULES:
            getattr(student, name).requires_grad_(name in self.modules)
        params = [p for name in self.modules for p in getattr(student, name).parameters()]
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.8, 0.99))

    def compute_loss(self, teacher_output: Targets, student_output: Predictions,
                     ground_truth: Targets | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """(1 - alpha) * L(y, S(x)) + alpha * L(T(x), S(x)); alpha = 1 when there is no y."""
        kd = self.criterion(teacher_output, student_output)
        parts = {f"kd_{k}": float(v.detach()) for k, v in kd.items()}
        total = sum(kd.values())
        if ground_truth is not None and self.alpha < 1.0:
            gt = self.criterion(ground_truth, student_output)
            parts.update({f"gt_{k}": float(v.detach()) for k, v in gt.items()})
            total = self.alpha * total + (1.0 - self.alpha) * sum(gt.values())
        return total, parts

    def predict(self, ids: torch.Tensor, teacher: Targets, z_segments: torch.Tensor | None) -> Predictions:
        """Student forward for the trained modules, fed the teacher's inputs (teacher forcing)."""
        s = self.student
        out = Predictions()
        if "duration" in self.modules:
            out.log_durations = s.duration(ids, teacher.id_mask)
        if "front" in self.modules:
            out.z, out.phoneme_means = s.front.forward_with_means(ids, teacher.front_durations, teacher.id_mask,
                                                                  teacher.frame_mask)
            if teacher.window_starts is not None and teacher.window_audio is not None:
                # end to end: the front's z through the student decoder (frozen unless trained), heard as audio
                frames = teacher.window_audio.shape[1] // s.hop_length
                out.front_audio = s.decoder(frame_windows(out.z, teacher.window_starts, frames))
        if "decoder" in self.modules and z_segments is not None:
            out.audio = s.decoder(z_segments)
        return out

    def step(self, ids: torch.Tensor, teacher: Targets, z_segments: torch.Tensor | None,
             ground_truth: Targets | None = None, lr: float | None = None,
             reduce: Callable[[list[torch.Tensor]], None] | None = None) -> dict[str, float]:
        """One update. `reduce` (data-parallel runs) averages the gradients across processes, before
        clipping, so single-process and distributed runs take the same path."""
        self.student.train()
        if lr is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        loss, parts = self.compute_loss(teacher, self.predict(ids, teacher, z_segments), ground_truth)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if reduce is not None:
            reduce([p.grad for p in params if p.grad is not None])
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        self.optimizer.step()
        return {"loss": float(loss.detach()), **parts}


def mean_head_loss(predicted: torch.Tensor, target: Targets) -> torch.Tensor:
    """L1 between the mean head's per-phoneme z and the teacher's z averaged over each phoneme, weighted by
    the phoneme's frames: the part of the front's z error that a phoneme-rate encoder must fix."""
    durations = target.front_durations * target.id_mask.squeeze(1).long()
    means = phoneme_means(target.z.float() * target.frame_mask, durations)
    weight = durations.unsqueeze(1).float()
    return (torch.abs(predicted - means) * weight).sum() / (weight.sum() * predicted.shape[1]).clamp(min=1)


def frame_windows(z: torch.Tensor, starts: torch.Tensor, frames: int) -> torch.Tensor:
    """z [B, C, T] -> z[b, :, starts[b]:starts[b] + frames] stacked [B, C, frames], zero-padded past T."""
    z = torch.nn.functional.pad(z, (0, frames))
    index = (starts[:, None] + torch.arange(frames, device=z.device)[None])[:, None].expand(-1, z.shape[1], -1)
    return torch.gather(z, 2, index)
