"""onnxruntime sessions, configured in one place (the teacher, the exported student and DNSMOS use them)."""
from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def session_options(threads: int | None) -> ort.SessionOptions:
    """threads=None keeps onnxruntime's default (all physical cores); one inter-op thread always."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def cpu_session(model: str | Path | bytes, threads: int | None) -> ort.InferenceSession:
    """A CPU inference session for a model file (or serialized model bytes)."""
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, session_options(threads), providers=["CPUExecutionProvider"])
