"""A Bradley-Terry leaderboard from blind A/B votes: every system's strength from all its pairwise
outcomes (ties count half to each side), on an Elo-like scale (400 points = 10:1 odds), with 95 %
bootstrap intervals. The reference system is fixed at 0."""
from __future__ import annotations

import math
import random
from collections import defaultdict

ELO = 400 / math.log(10)


def strengths(rows: list[dict], iterations: int = 100) -> dict[str, float]:
    """Bradley-Terry log-strengths by Hunter's MM algorithm; each met pair gets one virtual tie, so a
    system that always wins (or loses) keeps a finite strength."""
    wins: dict[tuple[str, str], float] = defaultdict(float)
    systems: set[str] = set()
    for r in rows:
        a, b = r["system_a"], r["system_b"]
        if a == b:
            continue
        systems |= {a, b}
        winner = r.get("preferred")
        if winner is None:
            wins[a, b] += 0.5
            wins[b, a] += 0.5
        else:
            wins[winner, b if winner == a else a] += 1
    for a, b in {tuple(sorted(pair)) for pair in wins}:  # one virtual tie per pair that met
        wins[a, b] += 0.5
        wins[b, a] += 0.5
    names = sorted(systems)
    if not names:
        return {}
    p = {s: 1.0 for s in names}
    for _ in range(iterations):
        new = {}
        for i in names:
            won = sum(wins[i, j] for j in names if j != i)
            denominator = sum((wins[i, j] + wins[j, i]) / (p[i] + p[j]) for j in names if j != i)
            new[i] = won / denominator if denominator else p[i]
        norm = math.exp(sum(math.log(v) for v in new.values()) / len(new))
        p = {s: v / norm for s, v in new.items()}
    return {s: math.log(v) for s, v in p.items()}


def leaderboard(rows: list[dict], reference: str = "teacher", resamples: int = 200, seed: int = 0
                ) -> list[dict]:
    """[{system, elo, low, high, comparisons}] best first; elo relative to `reference` (if it was voted on)."""
    base = strengths(rows)
    if not base:
        return []
    anchor = reference if reference in base else sorted(base)[0]
    rng = random.Random(seed)
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(resamples):
        boot = strengths([rows[rng.randrange(len(rows))] for _ in rows], iterations=50)
        if anchor in boot:
            for s, v in boot.items():
                samples[s].append(ELO * (v - boot[anchor]))
    board = []
    for s, v in base.items():
        values = sorted(samples[s]) or [ELO * (v - base[anchor])]
        low, high = values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]
        board.append({"system": s, "elo": ELO * (v - base[anchor]), "low": low, "high": high,
                      "comparisons": sum(1 for r in rows if s in (r["system_a"], r["system_b"]))})
    return sorted(board, key=lambda e: -e["elo"])
