"""Resumable training state in safetensors + JSON (never pickle): modules, optimizers, the sampler's RNG.

Written atomically (temporary files, then `os.replace`), so a run killed at any moment resumes from
the last complete checkpoint.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def save_state(run_dir: Path, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
               rng: random.Random, meta: dict) -> None:
    """RUN_DIR/last.safetensors (+ last.json): every tensor of the modules and optimizers, plus `meta`."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v.detach().contiguous().cpu() for k, v in module.state_dict().items()})
    optimizer_meta = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, float]] = {}
        for index, values in state["state"].items():
            for key, value in values.items():
                if torch.is_tensor(value) and value.dim() > 0:
                    tensors[f"opt_{name}.{index}.{key}"] = value.contiguous().cpu()
                else:
                    scalars.setdefault(str(index), {})[key] = float(value)
        optimizer_meta[name] = {"scalars": scalars, "param_groups": state["param_groups"]}
    version, internal, gauss = rng.getstate()
    full = {**meta, "optimizers": optimizer_meta, "rng": list(internal), "rng_version": version,
            "rng_gauss": gauss, "torch_seed": int(torch.initial_seed())}
    save_file(tensors, str(run_dir / "last.safetensors.tmp"))
    (run_dir / "last.json.tmp").write_text(json.dumps(full))
    os.replace(run_dir / "last.safetensors.tmp", run_dir / "last.safetensors")
    os.replace(run_dir / "last.json.tmp", run_dir / "last.json")


def load_state(run_dir: Path, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
               rng: random.Random) -> dict:
    """Restore what `save_state` wrote; return its meta (step, best validation, ...)."""
    tensors = load_file(str(run_dir / "last.safetensors"))
    meta = json.loads((run_dir / "last.json").read_text())
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, optimizer in optimizers.items():
        prefix = f"opt_{name}."
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, field = key[len(prefix):].split(".", 1)
                state.setdefault(int(index), {})[field] = value
        saved = meta["optimizers"][name]
        for index, values in saved["scalars"].items():
            state.setdefault(int(index), {}).update({k: torch.tensor(v) for k, v in values.items()})
        optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    rng.setstate((meta["rng_version"], tuple(meta["rng"]), meta["rng_gauss"]))
    torch.manual_seed(meta["step"] + meta["torch_seed"])
    return meta
