"""Data-parallel training under `torchrun`: one process group (gloo on CPU, nccl on GPU), the same global
batch drawn on every rank and split between them, gradients averaged before clipping.

Every rank draws the same batch of `world × batch` items with the same random stream and trains on its own
slice, so N processes at batch B take the steps one process takes at batch N·B (`tests/test_parallel.py`).
Rank 0 alone validates and writes checkpoints.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def start() -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1); True if this call created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def device() -> torch.device:
    return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu")


def own_slice(items: list, size: int) -> list:
    """This rank's `size` items of a global batch of `world() * size`."""
    return items[rank() * size:(rank() + 1) * size]


def average_gradients(grads: list[torch.Tensor]) -> None:
    n = world()
    for grad in grads:
        dist.all_reduce(grad)
        grad /= n


def agree(value: int) -> int:
    """Rank 0's value on every rank (a count of utterances, a fitted step total)."""
    if not dist.is_initialized():
        return value
    box = torch.tensor([value], dtype=torch.int64, device=device())
    dist.broadcast(box, src=0)
    return int(box.item())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
