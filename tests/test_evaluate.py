"""The evaluation suite: metric sanity on real teacher audio, the report, missing evaluators."""
from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from kdtts.evaluate import MissingEvaluator, asr, dnsmos, fidelity, intrusive
from kdtts.evaluate.griffinlim import griffin_lim
from kdtts.evaluate.report import REPORT_KEYS

SENTENCE = "Please remember to water the plants while I am away."


@pytest.fixture(scope="module")
def speech(teacher, det_scales) -> np.ndarray:
    return teacher.full(np.asarray(teacher.phonemizer.ids(SENTENCE), dtype=np.int64), det_scales).audio


def noisy(x: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
    return (x + std * np.random.default_rng(seed).standard_normal(len(x))).astype(np.float32)


def test_mcd_is_zero_for_identical_audio_and_grows_with_noise(speech):
    assert fidelity.mcd_db(speech, speech) == 0.0
    small, large = fidelity.mcd_db(speech, noisy(speech, 0.003)), fidelity.mcd_db(speech, noisy(speech, 0.03))
    assert 0.0 < small < large


def test_mel_cepstrum_warping_is_the_all_pass_freqt():
    """pysptk's freqt / sp2mc (what MCD uses) keep the log spectrum and take its cosine series on the warped axis."""
    import pysptk

    assert fidelity.all_pass_alpha(22050) == 0.455
    rng = np.random.default_rng(0)
    c = np.zeros(513)
    c[:30] = rng.standard_normal(30) * np.exp(-np.arange(30) / 5)
    alpha, w = 0.455, np.linspace(0, np.pi, 200)
    warped = pysptk.freqt(c, 200, alpha)
    w_mel = w + 2 * np.arctan(alpha * np.sin(w) / (1 - alpha * np.cos(w)))
    # same log spectrum, cosine series on the warped axis; c~0 = sum c_n alpha^n; -alpha undoes it
    np.testing.assert_allclose(warped @ np.cos(np.outer(np.arange(201), w_mel)),
                               c @ np.cos(np.outer(np.arange(513), w)), atol=1e-9)
    assert warped[0] == pytest.approx(np.sum(c * alpha ** np.arange(513)))
    np.testing.assert_allclose(pysptk.freqt(warped, 29, -alpha), c[:30], atol=1e-9)
    # sp2mc of the power envelope exp(2 ln|H|) of a known cepstrum gives its warped cepstrum
    k = np.arange(513) * np.pi / 512
    power = np.exp(2 * c[:40] @ np.cos(np.outer(np.arange(40), k)))
    np.testing.assert_allclose(pysptk.sp2mc(power[None], 24, alpha)[0], pysptk.freqt(c[:40], 24, alpha), atol=1e-9)


def test_mcd_dtw_aligns_a_delayed_copy(speech):
    delayed = np.concatenate([np.zeros(4 * 256, np.float32), speech])
    # standard (WORLD, 5 ms frames) MCD: a 1024-sample delay is 9.3 frames, so WORLD analyses other instants
    # (about 2.5 dB); noise of std 0.03 is about 14 dB
    assert fidelity.mcd_db(speech, delayed) < 4.0 < fidelity.mcd_db(speech, noisy(speech, 0.03))


def test_pesq_near_maximum_for_identical_audio_and_lower_for_noise(speech):
    same = intrusive.pesq_wb(speech, speech)
    assert same > 4.0
    assert intrusive.pesq_wb(speech, noisy(speech, 0.01)) < same - 1.0


def test_stoi_is_one_for_identical_audio(speech):
    assert intrusive.stoi(speech, speech) == pytest.approx(1.0, abs=1e-6)
    assert intrusive.stoi(speech, noisy(speech, 0.1)) < 0.95


def test_f0_rmse_is_zero_for_identical_audio(speech):
    metrics = fidelity.f0_metrics(speech, speech)
    assert metrics["f0_rmse_hz"] == 0.0 and metrics["vuv_error"] == 0.0
    assert fidelity.f0_rmse_hz(speech, speech) == 0.0
    assert metrics["f0_fine_rmse_hz"] == 0.0 and metrics["ffe"] == 0.0


def test_f0_errors_split_into_fine_and_gross():
    t = np.arange(22050) / 22050

    def voice(f0: float) -> np.ndarray:  # a harmonic-rich steady vowel
        return sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 8)).astype(np.float32)

    near, octave = fidelity.f0_metrics(voice(150), voice(156)), fidelity.f0_metrics(voice(150), voice(300))
    assert near["f0_gross_error"] < 0.05 and 4 < near["f0_fine_rmse_hz"] < 8 and near["ffe"] < 0.05
    assert octave["f0_gross_error"] > 0.9 and octave["ffe"] > 0.9 and octave["f0_rmse_hz"] > 100


def test_wer_and_cer_with_the_same_normalisation_on_both_sides():
    assert asr.wer(SENTENCE, SENTENCE.lower().rstrip(".")) == 0.0
    assert asr.wer("Dr. Smith has 3 cats.", "doctor smith has three cats") == 0.0
    assert asr.cer("Dr. Smith has 3 cats.", "doctor smith has three cats") == 0.0
    assert asr.wer(SENTENCE, "please remember to water the plans while i am away") == pytest.approx(1 / 10)
    assert asr.wer(SENTENCE, "") == 1.0
    assert asr.cer(SENTENCE, "please remember") > 0.0


def test_recogniser_transcribes_a_teacher_sentence(speech):
    hypothesis = asr.transcribe(speech, 22050)
    assert asr.wer(SENTENCE, hypothesis) < 0.3, hypothesis


def test_dnsmos_returns_four_plausible_scores(speech):
    scores = dnsmos.dnsmos(speech, 22050)
    assert set(scores) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}
    assert all(1.0 <= v <= 5.0 for v in scores.values()), scores
    assert scores["dnsmos_ovrl"] > 2.5  # the teacher is clean speech
    assert dnsmos.dnsmos(noisy(speech, 0.05), 22050)["dnsmos_bak"] < scores["dnsmos_bak"]


def test_griffin_lim_baseline_is_aligned_and_close_to_the_teacher(speech):
    baseline = griffin_lim(speech, 22050)
    assert baseline.shape == speech.shape
    # standard full-band MCD: about 12 dB, most of it from 8-11 kHz, which the 8 kHz mel leaves empty
    assert fidelity.mcd_db(speech, baseline) < 14.0
    assert intrusive.pesq_wb(speech, baseline) > 2.0


def test_missing_evaluator_gives_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "pesq", None)  # makes `import pesq` raise ImportError
    with pytest.raises(MissingEvaluator, match=r"PESQ-WB needs the 'pesq' package.*pip install"):
        intrusive.pesq_wb(np.zeros(16000, np.float32), np.zeros(16000, np.float32))

    monkeypatch.setattr(dnsmos, "importlib", SimpleNamespace(util=SimpleNamespace(find_spec=lambda name: None)))
    with pytest.raises(MissingEvaluator, match="speechmos"):
        dnsmos.model_dir()

    # the report records the message and carries on
    from kdtts.evaluate.report import EvalConfig, Evaluation

    evaluation = Evaluation.__new__(Evaluation)
    evaluation.config, evaluation.skipped = EvalConfig(progress=False), {}
    assert evaluation._family("pesq", lambda: {"pesq_wb": intrusive.pesq_wb(np.zeros(8), np.zeros(8))}) == {}
    assert "pesq" in evaluation.skipped["pesq"]


def test_report_has_every_key(tmp_path, random_student_path, capsys):
    from kdtts.cli import main

    texts = tmp_path / "texts.txt"
    texts.write_text("The cat sat on the mat.\nIt is raining again.\n", encoding="utf-8")
    out = tmp_path / "eval"
    main(["evaluate", "--text-file", str(texts), "--student", str(random_student_path), "--out", str(out),
          "--speed-sentences", "1", "--repeats", "1", "--student-label", "untrained"])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(report["models"]) == {"teacher", "student", "griffinlim"}
    for name, model in report["models"].items():
        missing = set(REPORT_KEYS) - set(model)
        assert not missing, (name, missing)
    measured = ("wer", "cer", "dnsmos_ovrl", "dnsmos_p808", "rtf_1thread", "rtf_default", "parameters", "bytes",
                "peak_rss_mb")
    for name in ("teacher", "student"):
        assert all(report["models"][name][key] is not None for key in measured), report["models"][name]
    assert report["models"]["student"]["mcd_db"] is not None  # PESQ / F0 may be null for an untrained student
    assert set(report["pairs"]) == {"student_vs_teacher", "griffinlim_vs_teacher"}
    assert report["pairs"]["student_vs_teacher"]["mcd_db"] > report["pairs"]["griffinlim_vs_teacher"]["mcd_db"]
    assert report["speedup_student_over_teacher"]["1thread"] > 0
    assert report["meta"]["sentences"] == 2 and not report["meta"]["skipped"]
    student = report["models"]["student"]
    assert student["length_ratio"] > 0 and student["length_ratio_median_deviation"] >= 0
    for name in ("teacher", "student", "griffinlim"):  # prosody and loudness for every system
        assert report["models"][name]["loudness_lufs"] is not None
    assert report["models"]["teacher"]["f0_sd_st"] > 0 and report["models"]["griffinlim"]["f0_sd_ratio"] > 0
    versus = report["versus_teacher"]["griffinlim"]
    assert versus["loudness_diff_lu"]["sentences"] == 2 and len(versus["dnsmos_p808"]["ci95"]) == 2
    assert set(report["pairs"]["griffinlim_vs_teacher"]["ci95"]) >= {"pesq_wb", "stoi", "mel_distance"}
    assert report["meta"]["tier"] == "small"
    goals = {g["goal"]: g for g in report["goals"]}
    assert goals["parameters"]["passed"] and "DNSMOS P.808, end to end" in goals
    assert "## Student goals" in (out / "report.md").read_text(encoding="utf-8")
    for name in ("report.md", "metrics.png", "rtf_modules.png"):
        assert (out / name).stat().st_size > 0
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "| WER (pocketsphinx)" in markdown and "## Against the teacher, sentence by sentence" in markdown
    assert "| F0 SD / teacher's" in markdown
    assert json.loads(capsys.readouterr().out)["out"] == str(out)



def test_the_apps_headline_numbers_are_the_shipped_checkpoints():
    """assets/evaluation.json (what the app quotes) was measured on the checkpoints shipped beside it."""
    from kdtts.evaluate.headline import read_headline
    from kdtts.student.checkpoint import SHIPPED_STUDENT, SHIPPED_VOCODER, load_student, load_vocoder
    from kdtts.ui import about

    shipped = read_headline()
    student = shipped["student"]["models"]["student"]
    assert student["parameters"] == load_student().count_parameters()["total"]
    assert student["bytes"] == SHIPPED_STUDENT.stat().st_size
    assert shipped["vocoder"]["summary"]["parameters"] == load_vocoder().count_parameters()["total"]
    assert SHIPPED_VOCODER.exists()
    assert f"{student['dnsmos_p808']:.2f}" in about.headline() and "| DNSMOS" in about.benchmark_table()
    from kdtts.student.header import TIERS

    assert ("base" in shipped) == TIERS["base"].exists()  # a shipped base tier has its numbers, and only then
    if "base" in shipped:
        base = shipped["base"]["models"]["student"]
        assert base["parameters"] == load_student("base").count_parameters()["total"]
        assert base["bytes"] == TIERS["base"].stat().st_size
        assert "student, base tier" in about.benchmark_table()


def test_how_it_works_plots_every_shipped_system_by_quality_and_speed(tmp_path):
    from PIL import Image

    from kdtts.evaluate.headline import quality_speed_points, read_headline
    from kdtts.ui.plots import quality_speed

    shipped = read_headline()
    points = quality_speed_points(shipped)
    names = {p["name"] for p in points}
    tiers = {"student, small tier", "student, base tier"} if "base" in shipped else {"student"}
    assert {"Piper teacher (VITS)", "Griffin-Lim on the teacher's mel", "HiFi-GAN V1", "student vocoder"} | tiers \
        == names
    student = next(p for p in points if p["name"] in ("student", "student, small tier"))
    teacher = next(p for p in points if p["name"] == "Piper teacher (VITS)")
    assert student["rtf_1thread"] < teacher["rtf_1thread"] / 10  # the shipped student is the faster one
    assert Image.open(quality_speed(points, tmp_path)).size[0] > 500
    assert quality_speed([], tmp_path) is None
    with_base = {**shipped, "base": {"models": {"student": {"parameters": 3e6, "rtf_1thread": 0.01,
                                                            "dnsmos_p808": 3.9}}}}
    with_base["base"]["speedup_student_over_teacher"] = {"1thread": 10.0}
    base = next(p for p in quality_speed_points(with_base) if p["name"] == "student, base tier")
    assert base["parameters"] == 3e6 and base["role"] == "student"
    # placed by its speed-up over the teacher (its own run may be on another machine), not by its seconds
    assert base["rtf_1thread"] == pytest.approx(teacher["rtf_1thread"] / 10.0)
