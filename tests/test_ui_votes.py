"""Votes: SQLite in WAL mode loses nothing under concurrent writers; the interval maths match known values."""
from __future__ import annotations

import math
import sqlite3
import threading

import pytest

from kdtts.ui.votes import Vote, VoteStore, markdown, mean_ci, summarise, wilson


def test_wilson_known_values():
    # reference values: statsmodels proportion_confint(method="wilson"), Wilson (1927)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_mean_ci_known_values():
    mean, low, high = mean_ci([1, 2, 3, 4, 5])  # sd 1.5811, t(0.975, 4) = 2.7764
    assert mean == 3
    assert (low, high) == pytest.approx((1.0368, 4.9632), abs=1e-4)
    assert math.isnan(mean_ci([4])[1]) and math.isnan(mean_ci([])[0])


def test_200_concurrent_votes_all_land(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite")
    errors: list[BaseException] = []

    def cast(i: int) -> None:
        try:
            VoteStore(tmp_path / "votes.sqlite").add(  # a separate store (connection) per thread, like separate workers
                Vote(i % 40, f"prompt {i % 40}", "teacher", "student", ("A", "B", "none")[i % 3], 1 + i % 5, 5 - i % 5))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=cast, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.rows()) == 200
    assert sorted(r["prompt"] for r in store.rows()) == sorted(i % 40 for i in range(200))
    with sqlite3.connect(tmp_path / "votes.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_summary_and_csv(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite")
    for choice, a, b in [("A", 5, 3), ("A", 4, 2), ("B", 2, 4), ("none", 3, 3)]:
        store.add(Vote(0, "x", "teacher", "student", choice, a, b))
    summary = summarise(store.rows())
    assert summary["votes"] == 4
    assert summary["systems"]["teacher"]["wins"] == 2
    assert summary["systems"]["student"]["wins"] == 1
    assert summary["no_preference"]["count"] == 1
    assert summary["systems"]["teacher"]["mos"] == pytest.approx(3.5)
    assert summary["systems"]["student"]["mos"] == pytest.approx(3.0)
    for system in ("teacher", "student"):  # 4 ratings spread 2-5: the raw t interval leaves the 1-5 scale
        low, high = summary["systems"][system]["mos_ci"]
        assert 1.0 <= low < summary["systems"][system]["mos"] < high <= 5.0
    lines = store.csv(tmp_path / "votes.csv").read_text().splitlines()
    assert lines[0].startswith("id,created,prompt") and len(lines) == 5


def test_bad_votes_are_refused(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite")
    with pytest.raises(ValueError):
        store.add(Vote(0, "x", "teacher", "student", "maybe"))
    with pytest.raises(ValueError):
        store.add(Vote(0, "x", "teacher", "student", "A", 6, 3))
    assert len(store.rows()) == 0


def test_leaderboard_recovers_known_strengths():
    import random

    from kdtts.ui.leaderboard import ELO, leaderboard

    rng = random.Random(1)
    true = {"teacher": 0.0, "student": -0.5, "griffinlim": -2.0}
    rows = []
    for _ in range(400):
        a, b = rng.sample(sorted(true), 2)
        win_a = rng.random() < 1 / (1 + math.exp(true[b] - true[a]))
        rows.append({"system_a": a, "system_b": b, "preferred": a if win_a else b})
    board = leaderboard(rows)
    assert [e["system"] for e in board] == ["teacher", "student", "griffinlim"]
    for e in board:
        assert e["low"] <= e["elo"] <= e["high"]
        assert e["low"] - 1 <= ELO * true[e["system"]] <= e["high"] + 1  # the truth is inside the interval


def test_a_visitor_draws_prompts_without_replacement_and_never_the_same_pair_twice():
    import random

    from kdtts.ui.listening import Listening, Visitor

    listening = Listening.__new__(Listening)  # only the drawing, no models
    listening.prompts, listening._rng, listening.gold_rate = [f"p{i}" for i in range(6)], random.Random(3), 0.0
    listening.systems = lambda: {"teacher": None, "griffinlim": None, "student:s:1": None}
    visitor, draws = Visitor(), []
    for _ in range(12):
        draws.append(listening._draw(visitor))
    assert sorted(d[0] for d in draws[:6]) == list(range(6)) == sorted(d[0] for d in draws[6:])
    for (p1, a1, b1), (p2, a2, b2) in zip(draws, draws[1:]):
        assert (p1, {a1, b1}) != (p2, {a2, b2}) and a2 != b2


def test_summary_of_no_votes():
    summary = summarise([])
    assert summary["votes"] == 0 and summary["leaderboard"] == [] and markdown(summary) == "_No votes yet._"


def test_a_rater_who_fails_a_gold_check_is_left_out(tmp_path):
    from kdtts.ui.votes import GOLD

    store = VoteStore(tmp_path / "votes.sqlite")
    store.add(Vote(0, "x", "teacher", GOLD, "A", 5, 1, rater="careful"))       # passes: teacher preferred, gold 1
    store.add(Vote(1, "y", "teacher", "student", "A", 5, 3, rater="careful"))
    store.add(Vote(0, "x", GOLD, "teacher", "A", 5, 4, rater="careless"))      # fails: prefers the gold clip
    store.add(Vote(2, "z", "teacher", "student", "B", 1, 5, rater="careless"))
    summary = summarise(store.rows())
    assert summary["votes"] == 1 and summary["systems"]["student"]["mos"] == 3.0
    assert summary["gold"] == {"checks": 2, "failed_checks": 1, "raters_excluded": 1, "votes_excluded": 1}
    assert GOLD not in summary["systems"] and "1 of 2 passed" in markdown(summary)


def test_gold_checks_pair_the_teacher_with_the_degraded_clip():
    import random

    from kdtts.ui.listening import Listening, Visitor
    from kdtts.ui.votes import GOLD

    listening = Listening.__new__(Listening)
    listening.prompts, listening._rng, listening.gold_rate = ["p"], random.Random(0), 1.0
    listening.systems = lambda: {"teacher": None, "student:s:1": None}
    assert {frozenset(listening._draw(Visitor())[1:]) for _ in range(10)} == {frozenset({"teacher", GOLD})}


def test_the_arena_includes_a_module_mix_aligned_with_the_teacher(teacher, random_student_path, tmp_path):
    import soundfile as sf

    from kdtts.engine import Mix
    from kdtts.ui.listen import _shown
    from kdtts.ui.listening import TEACHER, Listening
    from kdtts.ui.service import Service

    service = Service(teacher, random_student_path, tmp_path)
    listening = Listening(service, VoteStore(tmp_path / "votes.sqlite"), ["A short prompt for the arena."])
    mix = next(s for s in listening.systems() if s.startswith("mix:"))
    assert _shown(mix).startswith("teacher front + student decoder")
    used = []
    synthesize = listening._synthesize
    listening._synthesize = lambda engine, text, mix: used.append(mix) or synthesize(engine, text, mix)
    mixed, rate = sf.read(listening.audio(mix, 0))
    assert used == [Mix("teacher", "teacher", "student")]  # the student's decoder on the teacher's durations and z
    assert rate == 22050 and len(mixed) > rate // 2
    assert TEACHER in listening.systems()
