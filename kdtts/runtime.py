"""onnxruntime sessions, configured in one place (the teacher, the exported student and DNSMOS use them)."""
from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def session_options(threads: int | None) -> ort.SessionOptions:
    """threads=None keeps onnxruntime's default (all physical cores); one inter-op thread always.

    Idle intra-op threads sleep instead of spinning: the app runs several sessions at once on two cores, and
    spinning threads burned the CPU a student's request needed (benchmarks/load_test.py: student p50 4.8 ->
    3.6 s, teacher 7.9 -> 6.4 s with 50 concurrent calls)."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def cpu_session(model: str | Path | bytes, threads: int | None) -> ort.InferenceSession:
    """A CPU inference session for a model file (or serialized model bytes)."""
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, session_options(threads), providers=["CPUExecutionProvider"])
