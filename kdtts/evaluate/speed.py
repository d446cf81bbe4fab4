"""Speed and size: real-time factors per module and end to end, parameters, bytes on disk, peak RSS.

RTF = seconds of compute / seconds of audio produced (lower is faster; < 1 is faster than real time).
Each figure is the median over `repeats` timed passes (after `warmup` untimed ones) of the summed
compute over a fixed set of sentences divided by their summed audio length. The machine may be shared
and noisy: quote medians and student/teacher ratios.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kdtts.engine import STAGES, Engine, Mix
from kdtts.teachers.piper import PiperTeacher
from kdtts.voice import Scales

DEFAULT_TORCH_THREADS = torch.get_num_threads()


@dataclass
class ThreadSetting:
    """`threads=1` pins torch and onnxruntime to one intra-op thread; None keeps both libraries' defaults."""

    name: str
    threads: int | None

    def apply(self) -> None:
        torch.set_num_threads(self.threads or DEFAULT_TORCH_THREADS)


SETTINGS = (ThreadSetting("1thread", 1), ThreadSetting("default", None))


def _median_rtf(passes: list[dict[str, float]], audio_seconds: float) -> dict[str, float]:
    keys = passes[0].keys()
    return {k: statistics.median(p[k] for p in passes) / audio_seconds for k in keys}


def time_engine(engine: Engine, side: str, texts: list[str], scales: Scales,
                repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """RTF of `side` ("teacher" or "student") per stage (text, duration, front, decoder) and `total`,
    run module by module through the Engine (the same path the app takes)."""
    passes, audio_seconds = [], 0.0
    for r in range(warmup + repeats):
        stage = {s: 0.0 for s in STAGES}
        seconds = 0.0
        for text in texts:
            result = engine.synthesize(text, Mix.of(side), scales)  # type: ignore[arg-type]
            for s in STAGES:
                stage[s] += result.timings.get(s, 0.0)
            seconds += result.seconds
        if r >= warmup:
            stage["total"] = sum(stage[s] for s in STAGES)
            passes.append(stage)
            audio_seconds = seconds
    return _median_rtf(passes, audio_seconds)


def time_teacher_full(teacher: PiperTeacher, texts: list[str], scales: Scales,
                      repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """RTF of the real, unmodified teacher graph in one pass (front end included in `total`)."""
    passes, audio_seconds = [], 0.0
    for r in range(warmup + repeats):
        text_time = graph_time = seconds = 0.0
        for text in texts:
            start = time.perf_counter()
            utterances = teacher.phonemizer(text)
            text_time += time.perf_counter() - start
            for utterance in utterances:
                start = time.perf_counter()
                out = teacher.full(np.asarray(utterance.ids, dtype=np.int64), scales)
                graph_time += time.perf_counter() - start
                seconds += len(out.audio) / teacher.sample_rate
        if r >= warmup:
            passes.append({"text": text_time, "graph": graph_time, "total": text_time + graph_time})
            audio_seconds = seconds
    return _median_rtf(passes, audio_seconds)


def time_function(fn, inputs: list[np.ndarray], sample_rate: int, repeats: int = 3, warmup: int = 1,
                  seconds: float | None = None) -> float:
    """RTF of `fn(x)` over `inputs`: audio arrays whose length defines the audio seconds, or anything
    (mels) with the audio seconds they stand for given as `seconds`."""
    seconds = seconds if seconds is not None else sum(len(x) for x in inputs) / sample_rate
    totals = []
    for r in range(warmup + repeats):
        start = time.perf_counter()
        for x in inputs:
            fn(x)
        if r >= warmup:
            totals.append(time.perf_counter() - start)
    return statistics.median(totals) / seconds


def peak_rss(model: str, student: str | Path | None = None, voice: str | Path | None = None,
             threads: int | None = 1) -> dict[str, float]:
    """Peak resident memory in MB of a fresh process that loads one model and synthesises two sentences.

    Measured in a subprocess per model (`python -m kdtts.evaluate.memory`), so teacher and student numbers
    are separate. `peak_rss_mb` is the whole process (interpreter, torch, onnxruntime included);
    `model_rss_mb` subtracts the peak after the same imports, before the model is loaded.
    """
    cmd = [sys.executable, "-m", "kdtts.evaluate.memory", model]
    if student:
        cmd += ["--student", str(student)]
    if voice:
        cmd += ["--voice", str(voice)]
    if threads:
        cmd += ["--threads", str(threads)]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"peak RSS subprocess for {model} failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(teacher: PiperTeacher, student, student_path: Path | None, voice: Path | None, systems: list[str],
            texts: list[str], scales: Scales, repeats: int, warmup: int, progress: bool) -> dict[str, dict]:
    """RTF per module and end to end for every system, once per thread setting (one thread, defaults).

    The 1-thread models are the ones given; default-thread ones are loaded anew, because onnxruntime
    fixes its threads per session."""
    import sys

    from tqdm import tqdm

    from kdtts.evaluate.griffinlim import griffin_lim
    from kdtts.student.onnx_student import load_fast

    rate = teacher.spec.sample_rate
    result: dict[str, dict] = {s: {} for s in systems}
    teacher_audio = [teacher.full(np.asarray(u.ids, np.int64), scales).audio
                     for t in texts for u in teacher.phonemizer(t)]
    for setting in tqdm(SETTINGS, desc="speed", unit="setting", disable=not progress, file=sys.stderr):
        setting.apply()
        t = teacher if setting.threads == 1 else PiperTeacher.load(voice, threads=setting.threads)
        s = student if setting.threads == 1 or student is None else load_fast(student_path, threads=setting.threads)
        engine = Engine(t, s)
        modules = time_engine(engine, "teacher", texts, scales, repeats, warmup)
        full = time_teacher_full(t, texts, scales, repeats, warmup)
        result["teacher"][setting.name] = {"modules": modules, "full_graph": full, "end_to_end": full["total"]}
        if student is not None:
            modules = time_engine(engine, "student", texts, scales, repeats, warmup)
            result["student"][setting.name] = {"modules": modules, "end_to_end": modules["total"]}
        gl = time_function(lambda x: griffin_lim(x, rate), teacher_audio, rate, repeats, warmup)
        result["griffinlim"][setting.name] = {"modules": {"decoder": gl, "total": gl}, "end_to_end": gl,
                                              "note": "Griffin-Lim vocoder only (teacher mel -> audio)"}
    SETTINGS[1].apply()
    return result
