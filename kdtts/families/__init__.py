"""Teacher families, by name: each module here defines one `FAMILY` (kdtts.families.base.Family).

The CLI, the app and the fine-tune runner ask `family_of(teacher)` what to do with a teacher instead of
branching on its kind; adding a family is one new module in this package with a `FAMILY` whose `kinds`
are the registry kinds (kdtts.teachers.registry) of its teachers.
"""
from __future__ import annotations

import importlib
import pkgutil

from kdtts.families.base import Family
from kdtts.teachers.registry import TeacherChoiceError, teacher_entry

__all__ = ["FAMILIES", "Family", "family_of"]


def _discover() -> dict[str, Family]:
    found: dict[str, Family] = {}
    for module in pkgutil.iter_modules(__path__):
        family = getattr(importlib.import_module(f"{__name__}.{module.name}"), "FAMILY", None)
        if isinstance(family, Family):
            found[family.name] = family
    return dict(sorted(found.items()))


FAMILIES: dict[str, Family] = _discover()


def family_of(teacher: str) -> Family:
    """The family of the teacher named `teacher`; TeacherChoiceError for an unknown name."""
    kind = teacher_entry(teacher).kind
    for family in FAMILIES.values():
        if kind in family.kinds:
            return family
    raise TeacherChoiceError(f"no teacher family serves {teacher} (kind {kind!r})")
