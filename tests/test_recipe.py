"""The recipe: its files are checked data, a stage's steps fit a budget, and a run chains its stages,
resumes, and writes its card."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kdtts.distill.budget import StepBudget
from kdtts.distill.recipe import Recipe, RecipeError, Stopped, run_recipe
from kdtts.student.checkpoint import load_student, read_metadata
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig
from tests.conftest import synthetic_cache

TINY = {"duration_channels": 8, "duration_layers": 1, "front_channels": 8, "front_phoneme_layers": 1,
        "front_frame_layers": 1, "decoder_channels": 16, "decoder_layers": 1}


def test_shipped_recipes_load_and_the_base_tier_stays_under_5m_parameters():
    small, base, finetune = Recipe.load("small"), Recipe.load("base"), Recipe.load("finetune")
    assert small.init is None and finetune.init == "assets/student.safetensors"
    assert [s.kind for s in small.stages] == ["cache", "distill", "distill", "distill", "adversarial", "compose",
                                              "calibrate", "export", "evaluate"]
    assert StudentTTS(StudentConfig(**small.student)).count_parameters()["total"] < 1.5e6
    params = StudentTTS(StudentConfig(**base.student)).count_parameters()["total"]
    assert params == 2_582_979  # the shipped base tier's architecture (assets/MODEL_CARD_base.md)


@pytest.mark.parametrize("change, message", [
    ({"stages": [{"name": "cache", "kind": "cache"}, {"name": "gan", "kind": "adversarial", "hand_on": "best"}]},
     "hand_on"),
    ({"stages": [{"name": "cache", "kind": "cache"}, {"name": "d", "kind": "distill", "settings": {"max_step": 3}}]},
     "max_step"),
    ({"stages": [{"name": "d", "kind": "distill"}]}, "first stage"),
    ({"colour": "blue", "stages": []}, "colour"),
])
def test_a_bad_recipe_says_what_is_wrong(tmp_path, change, message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"name": "r", **change}))
    with pytest.raises(RecipeError, match=message):
        Recipe.load(path)


def test_budget_fits_the_steps_that_end_by_the_deadline():
    budget = StepBudget(deadline=time.monotonic() + 100, probe_seconds=5)
    assert budget.fit(steps_done=40, elapsed=4.0, step=40) is None  # still probing
    total = budget.fit(steps_done=50, elapsed=5.0, step=50)
    assert budget.rate == 10 and 50 + 10 * 99 <= total <= 50 + 10 * 100
    assert budget.fit(steps_done=60, elapsed=6.0, step=60) is None  # fitted once
    assert budget.every(total) == total // budget.checkpoints


def test_a_recipe_chains_its_stages_resumes_and_writes_its_card(tmp_path):
    cache = synthetic_cache(tmp_path / "cache")
    distill = {"max_steps": 3, "batch_utts": 2, "batch_segments": 2, "crop_ids": 8, "validation_utts": 4,
               "warmup_steps": 1, "checkpoint_every": 2}
    recipe_file = tmp_path / "tiny.json"
    recipe_file.write_text(json.dumps({
        "name": "tiny", "student": TINY, "sentences": 20, "min_utterances": 8, "stages": [
            {"name": "cache", "kind": "cache"},
            {"name": "duration", "kind": "distill", "hand_on": "best", "settings": {**distill, "modules": ["duration"]}},
            {"name": "decoder", "kind": "distill", "settings": {**distill, "modules": ["decoder"]},
             "speaks_from": 4},
            {"name": "compose", "kind": "compose",
             "modules": {"duration": "duration", "front": "duration", "decoder": "decoder"}},
            {"name": "calibrate", "kind": "calibrate", "settings": {"utts": 4}},
            {"name": "export", "kind": "export"}]}))
    recipe, out = Recipe.load(recipe_file), tmp_path / "run"
    student = run_recipe(recipe, out, cache_dir=str(cache), command="distill --recipe tiny", progress=False)

    state = json.loads((out / "recipe_state.json").read_text())
    assert all(s["status"] == "done" for s in state["stages"].values())
    assert state["stages"]["decoder"]["init"] == str(out / "2-duration" / "best.safetensors")
    assert state["stages"]["decoder"]["steps"] == state["stages"]["decoder"]["settings"]["max_steps"] == 3
    assert state["stages"]["export"]["parity"]["durations_equal_fraction"] == 1.0
    assert load_student(student).config.decoder_channels == 16
    assert read_metadata(student)["info"]["recipe"] == "tiny"
    # clips shorter than BS.1770's 400 ms block have no loudness: no gain, rather than a NaN in the decoder
    assert read_metadata(student)["info"]["loudness_calibration"] == {"gain_db": 0.0, "sentences": 0}
    card = (out / "MODEL_CARD.md").read_text()
    assert "`distill --recipe tiny`" in card and "| 3 | decoder | distill | 3 (3) |" in card
    assert "**Warning**: the decoder stage fitted 3 steps, under the 4 this recipe asks" in card  # only the decoder
    assert card.count("**Warning**") == 1

    with pytest.raises(RecipeError, match="--resume"):
        run_recipe(recipe, out, cache_dir=str(cache), progress=False)
    run_recipe(recipe, out, cache_dir=str(cache), resume=True, command="again", progress=False)  # all done
    state = json.loads((out / "recipe_state.json").read_text())
    assert [s["resumed"] for s in state["sittings"]] == [False, True]
    assert state["stages"]["decoder"]["sittings"] == 1


def test_a_stopped_recipe_says_where_reports_its_stages_and_resumes(tmp_path):
    """The app's hooks: the display as dicts, every step's row, a stop between steps that --resume continues."""
    cache = synthetic_cache(tmp_path / "cache")
    distill = {"max_steps": 4, "batch_utts": 2, "batch_segments": 2, "crop_ids": 8, "validation_utts": 4,
               "warmup_steps": 1, "checkpoint_every": 2}
    recipe_file = tmp_path / "tiny.json"
    recipe_file.write_text(json.dumps({
        "name": "tiny", "student": TINY, "sentences": 20, "min_utterances": 8, "stages": [
            {"name": "cache", "kind": "cache"},
            {"name": "duration", "kind": "distill", "settings": {**distill, "modules": ["duration"]}},
            {"name": "decoder", "kind": "distill", "settings": {**distill, "modules": ["decoder"]}},
            {"name": "compose", "kind": "compose",
             "modules": {"duration": "duration", "front": "duration", "decoder": "decoder"}}]}))
    shown, rows = [], []
    stop_at = {"decoder": 3}

    def should_stop() -> bool:
        return bool(rows) and rows[-1][1].get("stage") in stop_at and rows[-1][0] >= stop_at[rows[-1][1]["stage"]]

    out = tmp_path / "run"
    with pytest.raises(Stopped, match="stage 3/4 .decoder."):
        run_recipe(Recipe.load(recipe_file), out, cache_dir=str(cache), progress=False, should_stop=should_stop,
                   on_progress=shown.append, on_step=lambda step, row: rows.append((step, row)))
    assert {(p["k"], p["n"], p["stage"]) for p in shown} >= {(1, 4, "cache"), (2, 4, "duration"), (3, 4, "decoder")}
    assert [step for step, row in rows if row["stage"] == "duration"] == [1, 2, 3, 4]
    assert all(p["total"] == 4 for p in shown if p["stage"] == "decoder")
    state = json.loads((out / "recipe_state.json").read_text())
    assert state["stages"]["duration"]["status"] == "done" and state["stages"]["decoder"]["status"] == "running"
    assert state["stages"]["decoder"]["seconds"] > 0  # the stopped sitting's time is on the card
    assert not (out / "student.safetensors").exists()

    stop_at.clear()
    student = run_recipe(Recipe.load(recipe_file), out, cache_dir=str(cache), resume=True, progress=False,
                         on_step=lambda step, row: rows.append((step, row)))
    assert [step for step, row in rows[-2:]] == [3, 4]  # the decoder continued from its last checkpoint
    assert load_student(student).config.decoder_channels == 16


def test_the_distill_tab_runs_the_recipe_short_form_publishes_its_card_and_cancels(teacher, tmp_path, monkeypatch):
    from kdtts.distill import finetune_request
    from kdtts.distill.finetune import Finetuner, FinetuneRequest
    from kdtts.student.checkpoint import SHIPPED_STUDENT

    def short_form(front_steps: int) -> str:
        path = tmp_path / f"short{front_steps}.json"
        path.write_text(json.dumps({"name": "short", "init": "assets/student.safetensors", "min_utterances": 48,
                                    "stages": [
            {"name": "cache", "kind": "cache"},
            {"name": "front", "kind": "distill", "share": 0.5, "hand_on": "best",
             "settings": {"modules": ["front"], "max_steps": front_steps, "batch_utts": 2, "validation_utts": 16,
                          "checkpoint_every": 2}},
            {"name": "adversarial", "kind": "adversarial", "share": 0.5,
             "settings": {"max_steps": 2, "batch_segments": 2, "segment_frames": 16, "validation_utts": 16,
                          "checkpoint_every": 2}},
            {"name": "compose", "kind": "compose",
             "modules": {"duration": "front", "front": "front", "decoder": "adversarial"}},
            {"name": "calibrate", "kind": "calibrate", "settings": {"utts": 8, "skip": 1}},
            {"name": "export", "kind": "export"}]}))
        return str(path)

    quick, slow = short_form(3), short_form(5000)
    monkeypatch.setattr(finetune_request, "RECIPES", (quick, slow))
    text = "The cat sat on the mat.\nA bird sang in the tall tree.\nWe walked to the market at noon."
    jobs = Finetuner(teacher, tmp_path / "data", lambda: {"shipped": SHIPPED_STUDENT})
    with pytest.raises(ValueError, match="between 2 and 30 minutes"):
        jobs.start(FinetuneRequest(recipe=quick, minutes=1, text=text, base="shipped"))
    with pytest.raises(ValueError, match="one regression"):
        jobs.start(FinetuneRequest(recipe=quick, text=text, base="shipped", student={"decoder_channels": 8}))

    job = jobs.start(FinetuneRequest(name="short", recipe=quick, minutes=2, text=text, base="shipped"))
    jobs.wait(240)
    assert job.status == "done", job.message
    card = Path(job.checkpoint).with_suffix(".card.md").read_text()
    assert card == job.card and "the app's Distill tab" in card and "| 2 | front | distill | 3 (3) |" in card
    assert job.snapshot()["stage"] == "stage 6/6 export" and job.snapshot()["card"] == card
    info = load_student(job.checkpoint).info
    calibration = info["loudness_calibration"]  # two of the three sentences, measured end to end
    assert calibration["sentences"] == 2 and abs(calibration["gap_mean_after_lu"]) < abs(
        calibration["gap_mean_before_lu"]) + 0.05 and f"{calibration['gain_db']:+.2f} dB" in card
    assert info["recipe"] == "short" and info["stages"]["front"]["steps"] == 3 and info["base"] == "student.safetensors"
    assert not list((tmp_path / "data" / "finetune_runs").glob("*"))

    job = jobs.start(FinetuneRequest(name="cut", recipe=slow, minutes=10, text=text, base="shipped"))
    end = time.time() + 120
    while job.running and not (job.stage.endswith("front") and job.step >= 2) and time.time() < end:
        time.sleep(0.1)
    assert jobs.cancel(job.secret)
    jobs.wait(120)
    assert job.status == "cancelled" and "nothing was saved" in job.message, job.message
    assert not (tmp_path / "data" / "checkpoints" / "cut.safetensors").exists()
    assert not list((tmp_path / "data" / "finetune_runs").glob("*"))
