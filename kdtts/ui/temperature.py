"""The KD temperature, one control for the whole app: a multiplier on the teacher's own noise scales
(0 = its deterministic mean, 1 = its default sampling). Compare and Distill show the same slider."""
from __future__ import annotations

import math
from dataclasses import replace

import gradio as gr

from kdtts.teachers.piper import PiperTeacher
from kdtts.voice import Scales

RANGES = {"temperature": (0.0, 1.5), "length scale": (0.5, 2.0)}
"""What the sliders offer; checked again on the server because API callers can send any JSON number (or NaN)."""
HELP = "the teacher's noise scales × this: 0 = its mean (deterministic), 1 = its own sampling"


def slider(elem_id: str) -> gr.Slider:
    low, high = RANGES["temperature"]
    return gr.Slider(low, high, 0.0, step=0.05, label="temperature", info=HELP, elem_id=elem_id)


def scales(teacher: PiperTeacher, temperature: float, length: float = 1.0) -> Scales:
    """Checked Scales for a request: ValueError (shown to the user) for a value out of range or not finite."""
    values = []
    for (name, (low, high)), raw in zip(RANGES.items(), (temperature, length)):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {raw!r}")
        values.append(value)
    return replace(teacher.default_scales.at_temperature(values[0]), length=values[1])
