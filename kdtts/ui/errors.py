"""User mistakes come back to the page (or API caller) as a readable message, not a stack trace."""
from __future__ import annotations

import functools

import gradio as gr

from kdtts.distill.finetune import Busy
from kdtts.student.checkpoint import CheckpointError
from kdtts.text import TextError


def friendly(fn):
    """Bad text, no student, a busy job, a bad value: a `gr.Error` with the message."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (TextError, CheckpointError, Busy, ValueError) as error:
            raise gr.Error(str(error), print_exception=False) from error
    return wrapper
