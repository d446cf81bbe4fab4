"""The three student modules, each in the teacher's own interface so either side can be swapped in.

| module          | input -> output                        | distilled from                  |
|-----------------|----------------------------------------|---------------------------------|
| DurationStudent | phoneme ids -> log-durations            | teacher `Ceil` durations         |
| FrontStudent    | ids + durations -> z [192, frames]      | teacher latent z                 |
| DecoderStudent  | z -> waveform                           | teacher decoder audio for that z |
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from kdtts.audio import AudioSpec
from kdtts.student.layers import ConvNeXt1d, SelfAttention1d, length_regulate


@dataclass
class StudentConfig:
    """Architecture; stored in every checkpoint's JSON so a file rebuilds its own model."""

    n_symbols: int = 256
    z_channels: int = 192
    sample_rate: int = AudioSpec.sample_rate   # set from the teacher's AudioSpec when distilling
    hop_length: int = AudioSpec.hop_length
    n_fft: int = 1024
    duration_channels: int = 64
    duration_layers: int = 3
    front_channels: int = 96
    front_phoneme_layers: int = 3
    front_frame_layers: int = 3
    front_attention_layers: int = 0   # phoneme-rate self-attention after the conv blocks (sentence context)
    front_heads: int = 2
    front_dilated_layers: int = 0     # frame-rate blocks with dilation 3, 9, ... after the plain ones
    front_phoneme_channels: int = 0   # phoneme-rate width when it differs from the frame rate's (0: front_channels)
    front_mean_head: bool = False     # predict each phoneme's mean z at phoneme rate; frame layers add the rest
    front_relative_window: int = 0    # order-aware attention: learned offsets in [-w, w] (0: none)
    front_duration_input: bool = False  # the encoder also reads each phoneme's log-duration
    front_phoneme_repeats: int = 1    # run the phoneme-rate stack this many times with the same weights
    decoder_channels: int = 128
    decoder_layers: int = 6
    decoder_mult: int = 3
    decoder_repeats: int = 1          # run the decoder's blocks again with the same weights, each pass its own scales


class DurationStudent(nn.Module):
    """Phoneme ids -> log frames per id (the teacher's durations are >= 1 frame)."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        c = cfg.duration_channels
        self.embed = nn.Embedding(cfg.n_symbols, c)
        self.blocks = nn.ModuleList(ConvNeXt1d(c, mult=2, kernel_size=5) for _ in range(cfg.duration_layers))
        self.norm = nn.LayerNorm(c)
        self.out = nn.Linear(c, 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids [B, N], mask [B, 1, N] -> log-durations [B, N]."""
        x = self.embed(ids).transpose(1, 2) * mask
        for block in self.blocks:
            x = block(x, mask)
        return self.out(self.norm(x.transpose(1, 2))).squeeze(-1) * mask.squeeze(1)

    @staticmethod
    def to_frames(log_durations: torch.Tensor, length_scale: float = 1.0) -> torch.Tensor:
        return torch.clamp(torch.round(torch.exp(log_durations) * length_scale), min=1).long()


class FrontStudent(nn.Module):
    """Phoneme ids + durations -> latent z: encode phonemes, repeat by duration, refine per frame.

    With `front_mean_head`, the phoneme-rate encoder also predicts each phoneme's mean z (where most of the
    teacher's z variance lies: at temperature 0 it is the prior mean through the flow), which is repeated
    by duration; the frame-rate layers then only add what varies within a phoneme. The mean can then be
    supervised directly (`phoneme_means`), and the encoder can be as wide as the budget allows: its
    compute is per phoneme, not per frame.
    """

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        c, cp = cfg.front_channels, cfg.front_phoneme_channels or cfg.front_channels
        self.embed = nn.Embedding(cfg.n_symbols, cp)
        self.phoneme_blocks = nn.ModuleList(ConvNeXt1d(cp, kernel_size=5) for _ in range(cfg.front_phoneme_layers))
        self.attention = nn.ModuleList(SelfAttention1d(cp, cfg.front_heads, relative_window=cfg.front_relative_window)
                                       for _ in range(cfg.front_attention_layers))
        if cfg.front_duration_input:
            self.duration_in = nn.Conv1d(1, cp, 1)
            nn.init.zeros_(self.duration_in.weight), nn.init.zeros_(self.duration_in.bias)  # unread at first: growable
        self.to_frames = nn.Conv1d(cp, c, 1) if cp != c else nn.Identity()
        if cfg.front_mean_head:
            self.mean_norm = nn.LayerNorm(cp)
            self.mean_out = nn.Linear(cp, cfg.z_channels)
        self.position = nn.Conv1d(2, c, 1)  # where in the phoneme we are, and how long it is
        dilated = [ConvNeXt1d(c, dilation=3 ** (i + 1)) for i in range(cfg.front_dilated_layers)]
        self.frame_blocks = nn.ModuleList([ConvNeXt1d(c) for _ in range(cfg.front_frame_layers)] + dilated)
        self.norm = nn.LayerNorm(c)
        self.out = nn.Linear(c, cfg.z_channels)
        self.mean_head, self.duration_input = cfg.front_mean_head, cfg.front_duration_input
        self.repeats = cfg.front_phoneme_repeats

    def encode(self, ids: torch.Tensor, durations: torch.Tensor, id_mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ids, durations [B, N], mask [B, 1, N] -> (hidden [B, C, N], per-phoneme mean z [B, 192, N] or None).

        Durations are read only with `front_duration_input`: the teacher predicts them from its encoder's
        hidden state, so they carry some of that state (stress, phrase ends) to the student for free."""
        x = self.embed(ids).transpose(1, 2)
        if self.duration_input:
            x = x + self.duration_in(torch.log1p(durations.float()).unsqueeze(1))
        x = x * id_mask
        for _ in range(self.repeats):  # depth without parameters: the budget counts weights, and this runs per phoneme
            for block in self.phoneme_blocks:
                x = block(x, id_mask)
            for layer in self.attention:
                x = layer(x, id_mask)
        if not self.mean_head:
            return x, None
        return x, self.mean_out(self.mean_norm(x.transpose(1, 2))).transpose(1, 2) * id_mask

    def forward(self, ids: torch.Tensor, durations: torch.Tensor, id_mask: torch.Tensor,
                frame_mask: torch.Tensor) -> torch.Tensor:
        """ids, durations [B, N]; masks [B, 1, N] and [B, 1, T] -> z [B, 192, T]."""
        return self.forward_with_means(ids, durations, id_mask, frame_mask)[0]

    def forward_with_means(self, ids: torch.Tensor, durations: torch.Tensor, id_mask: torch.Tensor,
                           frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z [B, 192, T], the mean head's per-phoneme z [B, 192, N] or None)."""
        x, means = self.encode(ids, durations, id_mask)
        if means is not None:
            x = torch.cat([x, means], dim=1)  # repeated together: one gather
        x, position, length = length_regulate(x, durations * id_mask.squeeze(1).long(), frame_mask.shape[2])
        base = None
        if means is not None:
            x, base = x[:, :-means.shape[1]], x[:, -means.shape[1]:]
        x = self.to_frames(x) + self.position(torch.cat([position, torch.log(length)], dim=1))
        for block in self.frame_blocks:
            x = block(x, frame_mask)
        z = self.out(self.norm(x.transpose(1, 2))).transpose(1, 2)
        return (z if base is None else z + base) * frame_mask, means


class DecoderStudent(nn.Module):
    """z at frame rate -> waveform through an inverse-STFT head (Vocos-style), no upsampling stack."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        c = cfg.decoder_channels
        self.n_fft, self.hop = cfg.n_fft, cfg.hop_length
        self.conv_in = nn.Conv1d(cfg.z_channels, c, 3, padding=1)
        self.norm_in = nn.LayerNorm(c)
        self.blocks = nn.ModuleList(ConvNeXt1d(c, mult=cfg.decoder_mult) for _ in range(cfg.decoder_layers))
        # Depth without weights: later passes reuse every block, each with its own layer scale, at 0 so that
        # adding a pass to a trained decoder (grow.py) starts from exactly what it computed.
        self.pass_gammas = nn.ParameterList(nn.Parameter(torch.zeros(cfg.decoder_layers, c))
                                            for _ in range(cfg.decoder_repeats - 1))
        self.norm_out = nn.LayerNorm(c)
        self.head = nn.Linear(c, cfg.n_fft + 2)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def spectrum(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B, 192, T] -> (magnitude, phase) [B, n_fft/2+1, T]; the part ONNX export covers."""
        x = self.norm_in(self.conv_in(z).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        for gammas in self.pass_gammas:
            for block, gamma in zip(self.blocks, gammas):
                x = block(x, gamma=gamma)
        x = self.head(self.norm_out(x.transpose(1, 2))).transpose(1, 2)
        log_mag, phase = x.chunk(2, dim=1)
        return torch.exp(torch.clamp(log_mag, max=6.0)), phase

    def istft(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        return istft(magnitude, phase, self.window, self.hop)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, 192, T] -> audio [B, T * hop]."""
        return self.istft(*self.spectrum(z))


def istft(magnitude: torch.Tensor, phase: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """[B, n_fft/2+1, T] magnitude and phase -> [B, T * hop] audio, frames centred on t * hop."""
    n_fft = window.shape[0]
    return torch.istft(torch.polar(magnitude, phase), n_fft, hop, n_fft, window, center=True,
                       length=magnitude.shape[-1] * hop)
