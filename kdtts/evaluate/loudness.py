"""Integrated loudness per utterance (ITU-R BS.1770-4, K-weighted, gated; pyloudnorm), in LUFS.

A student that is 2 LU quieter than its teacher sounds duller in an A/B comparison, whatever its spectrum.
"""
from __future__ import annotations

from kdtts.audio import LOUDNESS_BLOCK_SECONDS as BLOCK_SECONDS
from kdtts.audio import integrated_loudness

__all__ = ["BLOCK_SECONDS", "integrated_loudness"]
