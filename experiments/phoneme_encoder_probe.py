"""How well can a phoneme-rate encoder of a given size predict each phoneme's mean teacher z?

`front_error.py` shows most of a front's z error is in the per-phoneme means, and that getting them right would
meet the front's PESQ / STOI goals. This trains encoders (ids -> one 192-d mean per phoneme) on that target alone,
at phoneme rate (fast: no frame-rate layers), and reports the same duration-weighted per-phoneme MSE that
`front_error.py` reports for a whole front, on the same validation utterances (the cache's first 32).

    python experiments/phoneme_encoder_probe.py --arms 96x3x0 128x3x2 --steps 3000 --out runs/probe.json

An arm is CHANNELSxCONVSxATTENTION, optionally followed by `+relW` (order-aware attention, offsets in [-W, W])
`+dur` (the encoder also reads each phoneme's log-duration) and `+repR` (the stack run R times with shared
weights), e.g. `128x2x1+rel4+dur`.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.distill.data import read_manifest  # noqa: E402
from kdtts.student.layers import phoneme_means  # noqa: E402
from kdtts.student.modules import FrontStudent, StudentConfig  # noqa: E402


def load_means(cache: Path, limit: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(ids [N], durations [N], per-phoneme mean z [192, N]) per utterance; a phoneme of 0 frames gets 0s."""
    out = []
    for item in tqdm(read_manifest(cache)[:limit], desc="reading cache", unit="utt"):
        with np.load(cache / "utts" / item["file"]) as f:
            ids, d, z = f["ids"].astype(np.int64), f["durations"].astype(np.int64), f["z"].astype(np.float32)
        ids_t, d_t = torch.from_numpy(ids), torch.from_numpy(d)
        out.append((ids_t, d_t, phoneme_means(torch.from_numpy(z)[None], d_t[None])[0]))
    return out


class PhonemeEncoder(torch.nn.Module):
    """The mean-head front's phoneme-rate part alone (`FrontStudent.encode`): ids -> per-phoneme mean z."""

    PARTS = ("embed", "duration_in", "phoneme_blocks", "attention", "mean_norm", "mean_out")  # not the frame part

    def __init__(self, spec: str) -> None:
        super().__init__()
        shape, *options = spec.split("+")
        channels, convs, attention = (int(x) for x in shape.split("x"))
        window = next((int(o[3:]) for o in options if o.startswith("rel")), 0)
        repeats = next((int(o[3:]) for o in options if o.startswith("rep")), 1)
        self.front = FrontStudent(StudentConfig(front_phoneme_channels=channels, front_phoneme_layers=convs,
                                                front_attention_layers=attention, front_mean_head=True,
                                                front_relative_window=window, front_duration_input="dur" in options,
                                                front_phoneme_repeats=repeats))

    def encoder_parameters(self) -> list[torch.nn.Parameter]:
        return [p for name in self.PARTS if hasattr(self.front, name) for p in getattr(self.front, name).parameters()]

    def forward(self, ids: torch.Tensor, durations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.front.encode(ids, durations, mask)[1]


def batch(utts: list) -> tuple[torch.Tensor, ...]:
    n = max(len(u[0]) for u in utts)
    ids, d = torch.zeros(len(utts), n, dtype=torch.long), torch.zeros(len(utts), n)
    means = torch.zeros(len(utts), 192, n)
    for i, (a, b, m) in enumerate(utts):
        ids[i, :len(a)], d[i, :len(a)], means[i, :, :len(a)] = a, b.float(), m
    return ids, d, means


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Squared error per phoneme weighted by its frames: front_error.py's per_phoneme_mse."""
    return (((pred - target) ** 2).sum(1) * d).sum() / (d.sum() * 192)


def train_arm(spec: str, train: list, val: list, steps: int, batch_utts: int, lr: float, seed: int,
              report: dict, out: Path) -> dict:
    """Train one arm; its history so far is written to `out` (inside `report`) at every evaluation, so a
    stopped probe keeps what it measured."""
    torch.manual_seed(seed)
    model = PhonemeEncoder(spec)
    opt = torch.optim.AdamW(model.encoder_parameters(), lr=lr, weight_decay=0.01)
    rng, started = random.Random(seed), time.perf_counter()
    val_batch = batch(val)
    history = []
    for step in tqdm(range(1, steps + 1), desc=spec, unit="step"):
        for group in opt.param_groups:  # warm-up then cosine to lr / 20
            group["lr"] = lr * min(1.0, step / 200) * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / steps)))
        ids, d, means = batch(rng.sample(train, batch_utts))
        mask = (d > 0).float()[:, None]
        pred = model(ids, d, mask)
        loss = (((pred - means).abs().mean(1)) * d).sum() / d.sum()  # L1, as the front's z loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.encoder_parameters(), 1.0)
        opt.step()
        if step % 500 == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                ids, d, means = val_batch
                val_mse = float(weighted_mse(model(ids, d, (d > 0).float()[:, None]), means, d))
                ids, d, means = batch(train[:256])
                train_mse = float(weighted_mse(model(ids, d, (d > 0).float()[:, None]), means, d))
            model.train()
            history.append({"step": step, "val_per_phoneme_mse": round(val_mse, 4), "train_per_phoneme_mse": round(train_mse, 4)})
            tqdm.write(f"{spec} {history[-1]}")
            report[spec] = {"parameters": sum(p.numel() for p in model.encoder_parameters()),
                            "seconds": round(time.perf_counter() - started), "history": history}
            out.write_text(json.dumps(report, indent=1))
    return report[spec]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=["96x3x0", "128x3x2"], help="CHANNELSxCONVSxATTENTION")
    parser.add_argument("--cache", default="cache/joe-t0")
    parser.add_argument("--utts", type=int, default=3200)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-utts", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/phoneme_encoder_probe.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    utts = load_means(Path(args.cache), args.utts)
    val, train = utts[:32], utts[32:]
    report: dict = {}
    for arm in args.arms:
        train_arm(arm, train, val, args.steps, args.batch_utts, args.lr, 0, report, Path(args.out))
    print(json.dumps({a: r["history"][-1] for a, r in report.items()}, indent=1))


if __name__ == "__main__":
    main()
