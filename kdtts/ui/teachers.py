"""The teacher selector shared by Compare and Distill, and the one switch between the teacher families'
panels: each tab keys its panels by family name (kdtts.families), and the chosen teacher's family is shown."""
from __future__ import annotations

import gradio as gr

from kdtts.families import family_of
from kdtts.teachers.registry import DEFAULT_TEACHER, TEACHERS, TeacherChoiceError, require

# an unavailable teacher stays in the list, greyed out and not clickable, with its reason written below
CSS = "".join(f"#{prefix}-teacher label:nth-of-type({i + 1}){{opacity:.45;pointer-events:none}}"
              for prefix in ("compare", "distill")
              for i, e in enumerate(TEACHERS.values()) if e.availability())


def teacher_selector(prefix: str) -> tuple[gr.Radio, gr.Markdown]:
    """Every teacher as a choice; the unavailable ones disabled, each with why."""
    missing = {e.name: e.availability() for e in TEACHERS.values()}
    choices = [(e.title + ("" if not missing[e.name] else " (unavailable here)"), e.name) for e in TEACHERS.values()]
    radio = gr.Radio(choices, value=DEFAULT_TEACHER, label="Teacher", elem_id=f"{prefix}-teacher")
    notes = "  \n".join(f"*{TEACHERS[n].title}* is unavailable here: {why}" for n, why in missing.items() if why)
    return radio, gr.Markdown(notes, elem_id=f"{prefix}-teacher-notes")


def chosen(name: str) -> str:
    """The teacher a request names, refused with its reason when it cannot run here (API callers too)."""
    try:
        require(name)
    except TeacherChoiceError as error:
        raise gr.Error(str(error), print_exception=False) from error
    return name


def shown_family(teacher: str) -> str:
    """The family whose panels a selection shows (an unknown name: the default teacher's)."""
    return family_of(teacher if teacher in TEACHERS else DEFAULT_TEACHER).name


def switch_panels(teacher: gr.Radio, panels: dict[str, list]) -> None:
    """Show the components of the chosen teacher's family, hide every other family's."""
    outputs = [component for components in panels.values() for component in components]

    def _show_for(name: str) -> tuple:  # the name Gradio gives its (private) endpoint, as before
        family = shown_family(name)
        return tuple(gr.update(visible=key == family) for key, components in panels.items() for _ in components)

    teacher.change(_show_for, teacher, outputs, api_visibility="private", queue=False)
