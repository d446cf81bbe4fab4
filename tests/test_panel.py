"""Prosody, loudness, paired intervals and the panel's decision rule, on synthetic voices and reports (fast)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kdtts.evaluate import goals, loudness, panel, prosody, stats
from kdtts.evaluate.versus import versus_teacher

RATE = 22050


def voice(depth_st: float, rate_hz: float = 0.7, seconds: float = 1.5, base_hz: float = 150.0) -> np.ndarray:
    """A harmonic-rich vowel whose pitch swings sinusoidally by +- depth_st semitones around base_hz."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = base_hz * 2 ** (depth_st * np.sin(2 * np.pi * rate_hz * t) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    return sum(0.3 / k * np.sin(k * phase) for k in range(1, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def sentences() -> list[dict]:
    """Rows as in report["sentences"]: the teacher, itself, a pitch-flattened copy (half the swing), a copy at
    half the amplitude."""
    rows = []
    for i, (depth, rate_hz) in enumerate([(3.0, 0.7), (4.0, 1.1), (2.0, 0.9)]):
        teacher = voice(depth, rate_hz)
        measure = lambda x: {**prosody.prosody(x, RATE), "loudness_lufs": loudness.integrated_loudness(x, RATE)}  # noqa: E731
        rows.append({"text": f"s{i}", "teacher": measure(teacher), "same": measure(teacher),
                     "flat": measure(voice(depth / 2, rate_hz)), "quiet": measure(0.5 * teacher)})
    return rows


def test_prosody_measures_the_pitch_swing_in_semitones():
    stats_ = prosody.prosody(voice(3.0), RATE)
    # a sinusoidal swing of +- 3 st: SD 3 / sqrt(2) = 2.12 st, 5-95 % range 2 * 3 * sin(0.45 pi) = 5.93 st
    assert stats_["f0_sd_st"] == pytest.approx(3 / np.sqrt(2), abs=0.1)
    assert stats_["f0_range_st"] == pytest.approx(6 * np.sin(0.45 * np.pi), abs=0.2)
    assert prosody.semitones(np.array([0.0, 100.0, 200.0])).tolist() == [0.0, 12.0]
    assert np.isnan(prosody.prosody(np.zeros(RATE, np.float32), RATE)["f0_sd_st"])


def test_prosody_ratio_is_one_against_itself_and_below_one_when_flattened(sentences):
    same, flat = versus_teacher(sentences, "same"), versus_teacher(sentences, "flat")
    for key in ("f0_sd_ratio", "f0_range_ratio"):
        assert same[key]["value"] == pytest.approx(1.0) and same[key]["ci95"] == pytest.approx([1.0, 1.0])
        assert 0.4 < flat[key]["value"] < 0.6 and flat[key]["ci95"][1] < 0.9  # half the swing
        assert flat[key]["statistic"] == "ratio" and flat[key]["sentences"] == 3


def test_loudness_of_a_copy_at_half_amplitude_is_6_db_lower(sentences):
    quiet = versus_teacher(sentences, "quiet")
    assert quiet["loudness_diff_lu"]["value"] == pytest.approx(-6.02, abs=0.01)
    assert quiet["loudness_worst_lu"]["value"] == pytest.approx(6.02, abs=0.01)
    assert versus_teacher(sentences, "same")["loudness_diff_lu"]["value"] == 0.0
    assert np.isnan(loudness.integrated_loudness(np.zeros(RATE // 4, np.float32), RATE))  # under one 400 ms block


def test_paired_interval_covers_a_known_shift_and_drops_missing_sentences():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 0.3, 60)
    y = x + 0.1 + rng.normal(0, 0.05, 60)
    iv = stats.interval(stats.mean_difference, x, y)
    assert iv.low < 0.1 < iv.high and iv.high - iv.low < 0.05 and iv.sentences == 60
    x[0] = np.nan
    assert stats.interval(stats.mean_difference, x, y).sentences == 59
    assert stats.interval(stats.mean, np.array([1.0])) is None


def report(**columns: list[float]) -> dict:
    """A minimal evaluation report: per-sentence student values (teacher F0 SD 3 st, range 10 st, -25 LUFS)."""
    n = len(next(iter(columns.values())))
    defaults = {"pesq_wb": [2.0] * n, "stoi": [0.9] * n, "mel_distance": [0.5] * n, "dnsmos_p808": [3.9] * n,
                "f0_sd_st": [2.7] * n, "f0_range_st": [9.0] * n, "loudness_lufs": [-25.5] * n,
                "word_edits": [1] * n, "words": [10] * n}
    defaults.update(columns)
    return {"sentences": [{"text": f"s{i}", "teacher": {"f0_sd_st": 3.0, "f0_range_st": 10.0, "loudness_lufs": -25.0},
                           "student": {k: v[i] for k, v in defaults.items()}} for i in range(n)]}


def wobble(base: float, n: int = 30, scale: float = 0.05, seed: int = 0) -> list[float]:
    return list(base + scale * np.random.default_rng(seed).standard_normal(n))


def test_panel_rejects_a_candidate_that_raises_dnsmos_while_pesq_falls():
    incumbent = report(pesq_wb=wobble(2.0), dnsmos_p808=wobble(3.90, seed=1))
    candidate = report(pesq_wb=wobble(1.8, seed=2), dnsmos_p808=wobble(4.00, seed=3))
    decision = panel.decide(candidate, incumbent)
    assert decision["metrics"]["dnsmos_p808"]["verdict"] == "better"
    assert decision["metrics"]["pesq_wb"]["verdict"] == "worse"
    assert not decision["ship"] and decision["verdict"] == "do not ship"
    assert any("DNSMOS rises while fidelity / prosody falls: pesq_wb" in r for r in decision["reasons"])


def test_panel_rejects_a_dnsmos_gain_even_when_the_prosody_loss_is_within_noise():
    incumbent = report(f0_sd_st=wobble(2.70, scale=0.3, seed=4), dnsmos_p808=wobble(3.90, seed=1))
    candidate = report(f0_sd_st=wobble(2.68, scale=0.3, seed=5), dnsmos_p808=wobble(4.00, seed=3))
    decision = panel.decide(candidate, incumbent)
    assert decision["metrics"]["f0_sd_ratio"]["verdict"] == "same"
    assert decision["metrics"]["f0_sd_ratio"]["gain"] < 0 and not decision["ship"]


def test_panel_ships_a_candidate_better_in_fidelity_and_no_worse_elsewhere():
    incumbent = report(pesq_wb=wobble(2.0), f0_sd_st=wobble(2.5, seed=6))
    candidate = report(pesq_wb=wobble(2.3, seed=2), f0_sd_st=wobble(2.9, seed=7))
    decision = panel.decide(candidate, incumbent)
    assert decision["ship"], decision["reasons"]
    assert decision["metrics"]["pesq_wb"]["verdict"] == decision["metrics"]["f0_sd_ratio"]["verdict"] == "better"
    assert decision["metrics"]["f0_sd_ratio"]["candidate"] == pytest.approx(2.9 / 3.0, abs=0.02)
    # prosody is judged by closeness to the teacher: a spread 20 % too wide is no better than 20 % too narrow
    wide, narrow = report(f0_sd_st=[3.6] * 30), report(f0_sd_st=[2.4] * 30)
    assert panel.decide(wide, narrow)["metrics"]["f0_sd_ratio"]["difference"] == pytest.approx(1 / 1.2 - 0.8)


def test_panel_ships_a_pure_gain_whose_other_changes_are_rounding():
    """A level calibration moves loudness by decibels and PESQ / the F0 range / DNSMOS by float rounding: those
    intervals are almost zero wide, so without a smallest difference that matters they read as worse / better."""
    pesq, rng, p808 = wobble(2.0), wobble(9.0, scale=0.3, seed=8), wobble(3.9, seed=9)
    incumbent = report(pesq_wb=pesq, f0_range_st=rng, dnsmos_p808=p808, loudness_lufs=wobble(-27.0, seed=10))
    candidate = report(pesq_wb=[x - 1e-4 for x in pesq], f0_range_st=[x - 1e-4 for x in rng],
                       dnsmos_p808=[x + 1e-5 for x in p808], loudness_lufs=wobble(-25.3, seed=10))
    decision = panel.decide(candidate, incumbent)
    assert decision["metrics"]["pesq_wb"]["ci95"][1] < 0  # beyond its interval, yet negligible
    assert decision["metrics"]["pesq_wb"]["verdict"] == decision["metrics"]["dnsmos_p808"]["verdict"] == "same"
    assert decision["metrics"]["loudness_mean_lu"]["verdict"] == "better"
    assert decision["ship"], decision["reasons"]


def test_panel_needs_something_better_and_the_same_sentences():
    same = report(pesq_wb=wobble(2.0))
    decision = panel.decide(same, same)
    assert not decision["ship"] and "no panel metric is better beyond its interval" in decision["reasons"]
    with pytest.raises(ValueError, match="different sentences"):
        panel.decide(report(pesq_wb=[2.0] * 3), report(pesq_wb=[2.0] * 4))


def test_panel_command_line_prints_every_metric_and_exits_with_the_verdict(tmp_path, capsys):
    inc, cand = tmp_path / "inc.json", tmp_path / "cand.json"
    inc.write_text(json.dumps(report(pesq_wb=wobble(2.0))))
    cand.write_text(json.dumps(report(pesq_wb=wobble(2.3, seed=2))))
    assert panel.main([str(cand), str(inc)]) == 0
    out = capsys.readouterr().out
    assert all(m.label in out for m in panel.PANEL) and "verdict: ship: better in pesq_wb" in out
    assert panel.main([str(inc), str(cand)]) == 1
    assert panel.main([str(cand), str(tmp_path / "missing.json")]) == 2


def test_goals_by_tier():
    r = {"models": {"teacher": {"dnsmos_p808": 3.97, "wer": 0.15},
                    "student": {"dnsmos_p808": 3.90, "wer": 0.17, "f0_sd_ratio": 0.92, "f0_range_ratio": 0.93,
                                "loudness_diff_lu": -0.3, "loudness_worst_lu": 1.2, "parameters": 1_400_000}},
         "pairs": {"student_vs_teacher": {"pesq_wb": 2.6}}}
    small = {g["goal"]: g["passed"] for g in goals.check_goals(r)}
    base = {g["goal"]: g["passed"] for g in goals.check_goals(r, "base")}
    assert small["F0 SD / teacher's"] and not base["F0 SD / teacher's"]          # 0.92: >= 0.90, < 0.95
    assert small["DNSMOS P.808 gap to the teacher"] and not base["DNSMOS P.808 gap to the teacher"]  # 0.07
    assert "PESQ-WB, teacher durations" in base and "PESQ-WB, teacher durations" not in small
    assert small["loudness - teacher's, worst sentence (max abs, LU)"] and small["WER"]
    with pytest.raises(ValueError, match="unknown tier"):
        goals.check_goals(r, "huge")
