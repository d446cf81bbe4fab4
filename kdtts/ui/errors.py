"""User mistakes come back to the page (or API caller) as a readable message, not a stack trace."""
from __future__ import annotations

import functools
import inspect

import gradio as gr

from kdtts.distill.finetune_request import Busy
from kdtts.student.header import CheckpointError
from kdtts.text import TextError

USER_ERRORS = (TextError, CheckpointError, Busy, ValueError)


def friendly(fn):
    """Bad text, no student, a busy job, a bad value: a `gr.Error` with the message. Works for handlers
    that return and for those that yield (streamed outputs)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except USER_ERRORS as error:
                raise gr.Error(str(error), print_exception=False) from error
        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as error:
            raise gr.Error(str(error), print_exception=False) from error
    return wrapper
