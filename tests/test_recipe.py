"""The recipe: its files are checked data, a stage's steps fit a budget, and a run chains its stages,
resumes, and writes its card."""
from __future__ import annotations

import json
import time

import pytest

from kdtts.distill.budget import StepBudget
from kdtts.distill.recipe import Recipe, RecipeError, run_recipe
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
                                              "export", "evaluate"]
    assert StudentTTS(StudentConfig(**small.student)).count_parameters()["total"] < 1.5e6
    params = StudentTTS(StudentConfig(**base.student)).count_parameters()["total"]
    assert 3e6 < params <= 5e6


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
            {"name": "decoder", "kind": "distill", "settings": {**distill, "modules": ["decoder"]}},
            {"name": "compose", "kind": "compose",
             "modules": {"duration": "duration", "front": "duration", "decoder": "decoder"}},
            {"name": "export", "kind": "export"}]}))
    recipe, out = Recipe.load(recipe_file), tmp_path / "run"
    student = run_recipe(recipe, out, cache_dir=str(cache), command="distill --recipe tiny", progress=False)

    state = json.loads((out / "recipe_state.json").read_text())
    assert all(s["status"] == "done" for s in state["stages"].values())
    assert state["stages"]["decoder"]["init"] == str(out / "2-duration" / "best.safetensors")
    assert state["stages"]["decoder"]["steps"] == 3
    assert state["stages"]["export"]["parity"]["durations_equal_fraction"] == 1.0
    assert load_student(student).config.decoder_channels == 16
    assert read_metadata(student)["info"]["recipe"] == "tiny"
    card = (out / "MODEL_CARD.md").read_text()
    assert "`distill --recipe tiny`" in card and "| 3 | decoder | distill | 3 (3) |" in card

    with pytest.raises(RecipeError, match="--resume"):
        run_recipe(recipe, out, cache_dir=str(cache), progress=False)
    run_recipe(recipe, out, cache_dir=str(cache), resume=True, command="again", progress=False)  # all done
    state = json.loads((out / "recipe_state.json").read_text())
    assert [s["resumed"] for s in state["sittings"]] == [False, True]
    assert state["stages"]["decoder"]["sittings"] == 1
