"""Grow a trained student by adding layers, keeping every weight it has.

Capacity added to a trained model should not throw its training away: the grown model copies every
existing tensor, and each new residual layer starts with its layer scale (`gamma*`) at 0, so at step 0 it
computes exactly what the old model did and training only has to learn what the new layers add.
"""
from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn


def grow(model: nn.Module, overrides: dict) -> nn.Module:
    """The same kind of model (a StudentTTS or a VocoderStudent) with its config updated by `overrides`,
    which may only add layers; a change to an existing tensor's shape is a ValueError."""
    grown = type(model)(type(model.config)(**{**asdict(model.config), **overrides}))
    old, new = model.state_dict(), grown.state_dict()
    changed = [k for k in old if k in new and old[k].shape != new[k].shape]
    if changed or set(old) - set(new):
        raise ValueError(f"overrides {overrides} must only add layers; they change "
                         f"{(changed or sorted(set(old) - set(new)))[:3]}")
    for key in set(new) - set(old):
        if key.rsplit(".", 1)[-1].startswith("gamma"):
            new[key] = torch.zeros_like(new[key])
    grown.load_state_dict({**new, **old})
    grown.info = getattr(model, "info", {})
    return grown.eval()
