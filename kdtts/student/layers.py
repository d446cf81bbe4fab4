"""Building blocks shared by the student modules."""
from __future__ import annotations

import math

import torch
from torch import nn


class ConvNeXt1d(nn.Module):
    """Depthwise conv + pointwise MLP with a residual: cheap per frame, wide receptive field."""

    def __init__(self, channels: int, mult: int = 3, kernel_size: int = 7, layer_scale: float = 0.1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, kernel_size, padding=dilation * (kernel_size // 2),
                                groups=channels, dilation=dilation)
        self.norm = nn.LayerNorm(channels)
        self.pw1 = nn.Linear(channels, mult * channels)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(mult * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, gamma: torch.Tensor | None = None
                ) -> torch.Tensor:
        """x: [B, C, T]; mask: [B, 1, T] (1 = valid) keeps padding from leaking into valid frames; `gamma`
        replaces the block's own layer scale (a shared block run again, with its own scale)."""
        if mask is not None:
            x = x * mask
        y = self.dwconv(x).transpose(1, 2)
        y = self.pw2(self.act(self.pw1(self.norm(y))))
        x = x + ((self.gamma if gamma is None else gamma) * y).transpose(1, 2)
        return x if mask is None else x * mask


class SelfAttention1d(nn.Module):
    """Pre-norm multi-head self-attention + MLP over a masked sequence, each with a layer-scaled residual.

    Convolutions see a few neighbours; the teacher's text encoder is a transformer that sees the whole
    sentence (phrase-level pitch and rhythm live there). Written out with plain ops, not
    nn.MultiheadAttention, so its ONNX export is the same graph PyTorch runs.

    Plain attention is blind to order. With `relative_window` w > 0 each head also learns a key and a value
    for every offset in [-w, w] (offsets beyond w share the edge one), as the teacher's own encoder does
    (Shaw et al. 2018), so a phoneme can weigh its neighbours by where they are, not only by what they are.
    """

    def __init__(self, channels: int, heads: int = 2, mult: int = 2, layer_scale: float = 0.1,
                 relative_window: int = 0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads, self.scale = heads, 1.0 / math.sqrt(channels // heads)
        self.window = relative_window
        if relative_window:
            offsets = 2 * relative_window + 1
            # zeros: the layer starts order-blind, so it can also be grown onto a trained front (grow.py)
            self.relative_key = nn.Parameter(torch.zeros(offsets, channels // heads))
            self.relative_value = nn.Parameter(torch.zeros(offsets, channels // heads))
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        self.pw1 = nn.Linear(channels, mult * channels)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(mult * channels, channels)
        self.gamma1 = nn.Parameter(torch.full((channels,), layer_scale))
        self.gamma2 = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: [B, C, N]; mask: [B, 1, N] (1 = valid): padding is never attended to."""
        h = (x * mask).transpose(1, 2)                                     # [B, N, C]
        b, n, c = h.shape
        q, k, v = self.qkv(self.norm1(h)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        scores = q @ k.transpose(-1, -2)                                   # [B, H, N, N]
        if self.window:
            t = torch.arange(n, device=x.device)
            offset = (t[None, :] - t[:, None]).clamp(-self.window, self.window) + self.window  # [N, N]
            one_hot = (offset[..., None] == torch.arange(2 * self.window + 1, device=x.device)).to(h.dtype)
            scores = scores + torch.einsum("bhir,ijr->bhij", q @ self.relative_key.t(), one_hot)
        weights = torch.softmax((scores * self.scale).masked_fill(mask[:, :, None, :] == 0, -1e4), dim=-1)
        attended = weights @ v
        if self.window:
            attended = attended + torch.einsum("bhij,ijr->bhir", weights, one_hot) @ self.relative_value
        attended = attended.transpose(1, 2).reshape(b, n, c)
        h = h + self.gamma1 * self.proj(attended)
        h = h + self.gamma2 * self.pw2(self.act(self.pw1(self.norm2(h))))
        return h.transpose(1, 2) * mask


def length_regulate(hidden: torch.Tensor, durations: torch.Tensor, frames: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Repeat each phoneme vector for its duration, as VITS' alignment does.

    hidden [B, C, N], durations [B, N] (frames, 0 for padding) ->
    (frames [B, C, T], position within phoneme in [0, 1) [B, 1, T], phoneme length [B, 1, T]).
    """
    ends = durations.cumsum(dim=1)                                   # [B, N]
    total = frames if frames is not None else ends[:, -1].max()  # no int(): stays dynamic in ONNX export
    t = torch.arange(total, device=hidden.device)[None, :].expand(hidden.shape[0], -1).contiguous()
    # phoneme of frame t = number of phonemes that ended at or before t (a comparison, so it exports to ONNX)
    index = (ends.unsqueeze(1) <= t.unsqueeze(2)).sum(dim=2).clamp(max=hidden.shape[2] - 1)  # [B, T]
    expanded = torch.gather(hidden, 2, index.unsqueeze(1).expand(-1, hidden.shape[1], -1))
    length = torch.gather(durations, 1, index).clamp(min=1).float()
    start = torch.gather(ends, 1, index) - torch.gather(durations, 1, index)
    position = (t - start).float() / length
    return expanded, position.unsqueeze(1), length.unsqueeze(1)


def phoneme_means(frames: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
    """The inverse of length_regulate for a per-phoneme constant: frames [B, C, T] averaged over each
    phoneme's frames -> [B, C, N] (0 for a phoneme of 0 frames). durations [B, N], 0 for padding."""
    ends = durations.cumsum(dim=1)
    t = torch.arange(frames.shape[2], device=frames.device)[None, :].expand(frames.shape[0], -1)
    index = (ends.unsqueeze(1) <= t.unsqueeze(2)).sum(dim=2)                # [B, T]; N for frames past the end
    sums = frames.new_zeros(frames.shape[0], frames.shape[1], durations.shape[1] + 1)
    sums.scatter_add_(2, index.unsqueeze(1).expand(-1, frames.shape[1], -1), frames)
    return sums[:, :, :-1] / durations.unsqueeze(1).clamp(min=1)
