"""The shipped tiers by name: resolution, the app's student list, and Compare's second student."""
from __future__ import annotations

import shutil

import pytest

from kdtts.student import header
from kdtts.student.header import SHIPPED_STUDENT, CheckpointError, student_path


@pytest.fixture
def two_tiers(tmp_path, monkeypatch, random_student_path):
    """A checkout with both tiers: the shipped small one and a (random) base one."""
    base = tmp_path / "student_base.safetensors"
    shutil.copyfile(random_student_path, base)
    monkeypatch.setitem(header.TIERS, "base", base)
    return base


def test_tier_names_and_paths_resolve(tmp_path, monkeypatch):
    assert student_path(None) == student_path("") == student_path("small") == SHIPPED_STUDENT
    assert student_path(str(tmp_path / "x.safetensors")) == tmp_path / "x.safetensors"  # a path stays a path
    monkeypatch.setitem(header.TIERS, "base", tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="The base tier is not in this checkout.*shipped here: small"):
        student_path("base")


def test_the_app_offers_every_shipped_tier_default_first(two_tiers, teacher, tmp_path, monkeypatch,
                                                         random_student_path):
    from kdtts.ui import settings
    from kdtts.ui.service import Service

    monkeypatch.setenv("KDTTS_STUDENT", "base")
    assert settings.student_path() == two_tiers
    service = Service(teacher, settings.student_path(), tmp_path / "data")
    assert list(service.checkpoints())[:2] == ["base", "small"] and service.default_name == "base"
    custom = Service(teacher, random_student_path, tmp_path / "data2")  # KDTTS_STUDENT=path: the tiers beside it
    assert list(custom.checkpoints()) == [f"{random_student_path.stem} (KDTTS_STUDENT)", "small", "base"]
    monkeypatch.setitem(header.TIERS, "base", tmp_path / "gone.safetensors")
    with pytest.raises(settings.SettingsError, match="KDTTS_STUDENT: The base tier is not in this checkout"):
        settings.student_path()


def test_compare_plays_the_teacher_and_both_tiers(two_tiers, teacher, det_scales, tmp_path):
    from kdtts.ui.compare import NO_SECOND, compare
    from kdtts.ui.service import Service

    service = Service(teacher, SHIPPED_STUDENT, tmp_path / "data")
    both = compare(service, "Side by side.", "small", det_scales, second_name="base")
    assert both.second_wav and both.student_wav and both.teacher_wav
    assert both.timings["student"]["name"] == "small" and both.timings["second"]["name"] == "base"
    assert both.timings["student"]["parameters"] == 1_259_619  # the shipped small tier
    assert "| **student: small** |" in both.table and "| **student: base** |" in both.table
    one = compare(service, "Side by side.", "small", det_scales, second_name=NO_SECOND)
    assert one.second_wav is None and "second" not in one.timings and "| **student** |" in one.table
    same = compare(service, "Side by side.", "small", det_scales, second_name="small")  # itself: not twice
    assert same.second_wav is None
    with pytest.raises(CheckpointError, match="Unknown student checkpoint 'nope'"):
        compare(service, "Side by side.", "small", det_scales, second_name="nope")
