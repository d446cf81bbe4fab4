"""Blind A/B votes in SQLite (WAL mode: many writers queue briefly, none is lost) and their statistics.

Preference rates carry Wilson score intervals; MOS means carry Student-t intervals (both 95 %).
"""
from __future__ import annotations

import csv
import io
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kdtts.ui.leaderboard import leaderboard

CHOICES = ("A", "B", "none")
SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    prompt INTEGER NOT NULL,
    text TEXT NOT NULL,
    system_a TEXT NOT NULL,
    system_b TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'none')),
    preferred TEXT,                 -- the system behind the chosen side; NULL for no preference
    mos_a INTEGER CHECK (mos_a BETWEEN 1 AND 5),
    mos_b INTEGER CHECK (mos_b BETWEEN 1 AND 5),
    session TEXT,                   -- a class's session code, so its votes can be analysed apart
    rater TEXT                      -- an opaque id of the listener's browser session (for gold checks)
)"""
COLUMNS = ("id", "created", "prompt", "text", "system_a", "system_b", "choice", "preferred", "mos_a", "mos_b",
           "session", "rater")
GOLD = "gold"
"""A deliberately degraded clip (P.808-style gold question): preferring it, or rating it above 2, fails
the check, and every vote of a rater who failed one is left out of the results."""


# -- statistics --------------------------------------------------------------------------------------
def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (scipy.stats.binomtest); (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def t_quantile(df: int, level: float = 0.95) -> float:
    """Two-sided Student-t critical value (scipy when present, else the normal 1.96)."""
    try:
        from scipy.stats import t

        return float(t.ppf(0.5 + level / 2, df))
    except ImportError:  # pragma: no cover
        return 1.959963984540054


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) with a Student-t interval; NaN bounds for fewer than two values."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1, level) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


# -- storage -----------------------------------------------------------------------------------------
@dataclass
class Vote:
    prompt: int
    text: str
    system_a: str
    system_b: str
    choice: str
    mos_a: int | None = None
    mos_b: int | None = None
    session: str | None = None
    rater: str | None = None

    def validate(self) -> None:
        if self.choice not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, got {self.choice!r}")
        for name, value in (("A", self.mos_a), ("B", self.mos_b)):
            if value is not None and not (1 <= int(value) <= 5):
                raise ValueError(f"rating for {name} must be 1–5, got {value}")


class VoteStore:
    """One SQLite file; a connection per thread; WAL so readers never block the writer."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(votes)")}
            for column in ("session", "rater"):  # a file written by an older kdtts
                if column not in have:
                    db.execute(f"ALTER TABLE votes ADD COLUMN {column} TEXT")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0)
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def add(self, vote: Vote) -> int:
        vote.validate()
        preferred = {"A": vote.system_a, "B": vote.system_b}.get(vote.choice)
        db = self._connect()
        with db:  # one transaction per vote
            cursor = db.execute(
                "INSERT INTO votes (created, prompt, text, system_a, system_b, choice, preferred, mos_a, mos_b, session, "
                "rater) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), vote.prompt, vote.text, vote.system_a, vote.system_b, vote.choice, preferred,
                 None if vote.mos_a is None else int(vote.mos_a), None if vote.mos_b is None else int(vote.mos_b),
                 vote.session, vote.rater))
        return int(cursor.lastrowid)

    def rows(self, session: str | None = None) -> list[dict]:
        """Every vote, or one class session's."""
        where, args = ("WHERE session = ?", (session,)) if session else ("", ())
        cursor = self._connect().execute(f"SELECT {', '.join(COLUMNS)} FROM votes {where} ORDER BY id", args)
        return [dict(zip(COLUMNS, row)) for row in cursor]

    def csv(self, path: str | Path, session: str | None = None) -> Path:
        path = Path(path)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows(session))
        path.write_text(buffer.getvalue(), encoding="utf-8")
        return path


# -- summaries ---------------------------------------------------------------------------------------
def gold_screen(rows: list[dict]) -> tuple[list[dict], dict]:
    """Drop gold-check votes, and every vote of a rater who failed a gold check; report the checks."""
    checks = [r for r in rows if GOLD in (r["system_a"], r["system_b"])]
    failed = set()
    for r in checks:
        gold_mos = r["mos_a"] if r["system_a"] == GOLD else r["mos_b"]
        if r["preferred"] == GOLD or (gold_mos is not None and gold_mos > 2):
            failed.add(r.get("rater") or f"vote {r['id']}")
    check_ids = {id(r) for r in checks}
    kept = [r for r in rows if id(r) not in check_ids and (r.get("rater") is None or r.get("rater") not in failed)]
    return kept, {"checks": len(checks), "failed_checks": sum(
        1 for r in checks if (r.get("rater") or f"vote {r['id']}") in failed), "raters_excluded": len(failed),
        "votes_excluded": len(rows) - len(checks) - len(kept)}


def summarise(rows: list[dict]) -> dict:
    """Per system: share of comparisons it won (Wilson CI) and its MOS (t CI); plus no-preference share,
    a Bradley-Terry leaderboard, and the gold checks (whose failing raters are left out of all of it)."""
    rows, gold = gold_screen(rows)
    systems = sorted({r["system_a"] for r in rows} | {r["system_b"] for r in rows})
    out = {"votes": len(rows), "systems": {}, "gold": gold}
    n = len(rows)
    ties = sum(1 for r in rows if r["choice"] == "none")
    out["no_preference"] = {"count": ties, "rate": ties / n if n else math.nan, "ci": wilson(ties, n)}
    for system in systems:
        shown = [r for r in rows if system in (r["system_a"], r["system_b"])]
        wins = sum(1 for r in shown if r["preferred"] == system)
        scores = [r["mos_a"] if r["system_a"] == system else r["mos_b"] for r in shown]
        scores += [r["mos_b"] for r in shown if r["system_a"] == system == r["system_b"]]
        scores = [float(s) for s in scores if s is not None]
        mean, low, high = mean_ci(scores)
        low, high = (max(1.0, low), min(5.0, high)) if low == low else (low, high)  # the MOS scale is 1-5
        out["systems"][system] = {"comparisons": len(shown), "wins": wins,
                                  "win_rate": wins / len(shown) if shown else math.nan,
                                  "win_ci": wilson(wins, len(shown)),
                                  "ratings": len(scores), "mos": mean, "mos_ci": (low, high)}
    out["leaderboard"] = leaderboard(rows)
    return out


def markdown(summary: dict) -> str:
    gold = summary.get("gold") or {}
    screened = (f"\n\nGold checks (a deliberately degraded clip): {gold['checks'] - gold['failed_checks']} of "
                f"{gold['checks']} passed; {gold['raters_excluded']} rater(s) who failed one are left out "
                f"({gold['votes_excluded']} votes)." if gold.get("checks") else "")
    if not summary["votes"]:
        return "_No votes yet._" + screened
    def pct(x: float) -> str:
        return "–" if x != x else f"{100 * x:.0f} %"
    def num(x: float) -> str:
        return "–" if x != x else f"{x:.2f}"
    lines = [f"**{summary['votes']} votes.** Intervals are 95 %: Wilson for rates, Student-t for MOS means (clipped to the 1-5 scale).", "",
             "| system | preferred in | rate [95 % CI] | ratings | MOS [95 % CI] |", "|---|---:|---|---:|---|"]
    for name, s in summary["systems"].items():
        lo, hi = s["win_ci"]
        mlo, mhi = s["mos_ci"]
        lines.append(f"| {name} | {s['wins']} / {s['comparisons']} | {pct(s['win_rate'])} [{pct(lo)}, {pct(hi)}] | "
                     f"{s['ratings']} | {num(s['mos'])} [{num(mlo)}, {num(mhi)}] |")
    tie = summary["no_preference"]
    lines.append(f"| _no preference_ | {tie['count']} / {summary['votes']} | {pct(tie['rate'])} "
                 f"[{pct(tie['ci'][0])}, {pct(tie['ci'][1])}] | | |")
    if summary.get("leaderboard"):
        lines += ["", "**Leaderboard** (Bradley-Terry on all pairings, Elo scale: 400 points = 10:1 odds; "
                      "teacher = 0; 95 % bootstrap intervals)", "",
                  "| rank | system | Elo vs teacher [95 % CI] | comparisons |", "|---:|---|---|---:|"]
        for rank, e in enumerate(summary["leaderboard"], 1):
            lines.append(f"| {rank} | {e['system']} | {e['elo']:+.0f} [{e['low']:+.0f}, {e['high']:+.0f}] | "
                         f"{e['comparisons']} |")
    return "\n".join(lines) + screened
