"""Run every metric on held-out sentences for the teacher, the student and the Griffin-Lim baseline.

Systems (one column each in the report):
- teacher:    the Piper voice, deterministic (noise scales 0), the unmodified graph;
- student:    its own durations (what a user hears): WER, CER, DNSMOS, speed, size;
- griffinlim: teacher audio -> 80-band log-mel -> Griffin-Lim, "a student with no neural vocoder".
Fidelity (MCD, PESQ-WB, STOI, F0 RMSE, log-mel distance) compares with the teacher's audio sample for sample, so
the student is run a second time with the teacher's durations (pair `student_vs_teacher`). Prosody (F0 SD and
5-95 % range in semitones) and BS.1770 loudness are measured on what a user hears (own durations) and compared
with the teacher's sentence by sentence (`versus_teacher`, with paired bootstrap intervals).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from kdtts.evaluate.machine import git_head, load_average, machine
from kdtts.evaluate.markdown import report_markdown
from kdtts.evaluate.optional import MissingEvaluator
from kdtts.evaluate.plots import plot_metrics, plot_rtf
from kdtts.evaluate.schema import (F0_DETAIL_KEYS, FIDELITY_KEYS, HELDOUT, PAIRS, PROSODY_KEYS, QUALITY_KEYS,
                                   REPORT_KEYS, SYSTEMS, VS_TEACHER_KEYS)
from kdtts.evaluate.versus import fidelity_intervals, versus_teacher


@dataclass
class EvalConfig:
    text_file: Path = HELDOUT
    student: Path | None = None
    student_label: str | None = None
    out: Path = Path("runs/evaluate")
    limit: int | None = None
    voice: Path | None = None
    speed_sentences: int = 5
    repeats: int = 3
    warmup: int = 1
    skip: tuple[str, ...] = ()          # any of kdtts.evaluate.schema.FAMILIES
    tier: str = "small"                 # whose goals to check: kdtts.evaluate.goals.TIERS
    save_audio: bool = False
    command: str | None = None
    progress: bool = True


@dataclass
class Utt:
    """One held-out line, synthesised by every system."""

    text: str
    audio: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, dict[str, float | str | None]] = field(default_factory=dict)


def read_sentences(path: Path, limit: int | None = None) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    return lines[:limit] if limit else lines


def _nanmean(values: list[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(vals)) if vals else None


def _clean(value):
    """JSON-safe: NaN -> None, numpy scalars -> float, rounded."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value


class Evaluation:
    """Holds the models and runs the metric families; `run()` returns the report dict."""

    def __init__(self, config: EvalConfig) -> None:
        from kdtts.engine import Engine
        from kdtts.student.onnx_student import load_fast
        from kdtts.teachers.piper import PiperTeacher

        self.config = config
        self.skipped: dict[str, str] = {}
        # one intra-op thread for synthesis and scoring: on a small shared machine that is the fastest
        # and steadiest; `speed()` times default threads with a teacher of its own
        self.teacher = PiperTeacher.load(config.voice, threads=1)
        self.scales = self.teacher.default_scales.deterministic()
        self.student = load_fast(config.student, threads=1) if config.student else None
        self.engine = Engine(self.teacher, self.student)
        self.rate = self.teacher.sample_rate
        self.systems = [s for s in SYSTEMS if s != "student" or self.student is not None]

    # -- synthesis -------------------------------------------------------------------------------
    def synthesize(self, text: str) -> Utt:
        from kdtts.engine import Mix
        from kdtts.evaluate.griffinlim import griffin_lim

        parts: dict[str, list[np.ndarray]] = {"teacher": [], "student": [], "student_td": [], "griffinlim": []}
        for utterance in self.teacher.phonemizer(text):
            ids = np.asarray(utterance.ids, dtype=np.int64)
            out = self.teacher.full(ids, self.scales)
            parts["teacher"].append(out.audio)
            parts["griffinlim"].append(griffin_lim(out.audio, self.rate))
            if self.student is not None:
                parts["student"].append(self.engine.run_ids(ids, Mix.of("student"), self.scales)[2])
                parts["student_td"].append(
                    self.engine.run_ids(ids, Mix.of("student"), self.scales, durations=out.durations)[2])
        return Utt(text, {k: np.concatenate(v).astype(np.float32) for k, v in parts.items() if v})

    # -- metric families, each may be skipped or missing -----------------------------------------
    def _family(self, name: str, fn: Callable[[], dict]) -> dict:
        if name in self.config.skip or name in self.skipped:
            return {}
        try:
            return fn()
        except MissingEvaluator as error:
            self.skipped[name] = str(error)
            print(f"kdtts evaluate: skipping {name}: {error}", file=sys.stderr)
            return {}

    def score(self, utt: Utt) -> None:
        from kdtts.align import mel_distance
        from kdtts.evaluate import asr, dnsmos, fidelity, intrusive, loudness, prosody

        ref = utt.audio["teacher"]
        for system in self.systems:
            audio = utt.audio[system]
            m: dict = {}

            def recognise(audio=audio):
                hyp = asr.transcribe(audio, self.rate)
                w, n_w = asr.error_counts(utt.text, hyp, "word")
                c, n_c = asr.error_counts(utt.text, hyp, "char")
                return {"transcript": hyp, "word_edits": w, "words": n_w, "char_edits": c, "chars": n_c}

            m.update(self._family("wer", recognise))
            m.update(self._family("dnsmos", lambda audio=audio: dnsmos.dnsmos(audio, self.rate)))
            m.update(self._family("prosody", lambda audio=audio: prosody.prosody(audio, self.rate)))
            m.update(self._family("loudness", lambda audio=audio: {
                "loudness_lufs": loudness.integrated_loudness(audio, self.rate)}))
            if system in PAIRS:
                deg = utt.audio["student_td" if system == "student" else system]
                m.update(self._family("mcd", lambda: fidelity.mcd_both(ref, deg, self.rate)))
                m.update(self._family("pesq", lambda: {"pesq_wb": intrusive.pesq_wb(ref, deg, self.rate)}))
                m.update(self._family("stoi", lambda: {"stoi": intrusive.stoi(ref, deg, self.rate)}))
                m.update(self._family("f0", lambda: fidelity.f0_metrics(ref, deg, self.rate)))
                m.update(self._family("mel", lambda: {"mel_distance": mel_distance(ref, deg, self.teacher.spec)}))
            m["samples"] = len(audio)
            utt.metrics[system] = m

    # -- speed, size, memory ---------------------------------------------------------------------
    def speed(self, texts: list[str]) -> dict[str, dict]:
        """RTF per module and end to end, 1 thread and default threads, for every system."""
        from kdtts.evaluate.speed import measure

        cfg = self.config
        return measure(self.teacher, self.student, cfg.student, cfg.voice, self.systems, texts, self.scales,
                       cfg.repeats, cfg.warmup, cfg.progress)

    def sizes(self) -> dict[str, dict]:
        from kdtts.evaluate import speed

        out: dict[str, dict] = {
            "teacher": {"parameters": self.teacher.parameters, "bytes": self.teacher.bytes_on_disk,
                        "decoder_parameters": self.teacher.decoder_parameters},
            "griffinlim": {"parameters": 0, "bytes": 0, "peak_rss_mb": None}}
        if self.student is not None:
            counts = self.student.count_parameters()
            out["student"] = {"parameters": counts["total"], "bytes": os.path.getsize(self.config.student),
                              "decoder_parameters": counts["decoder"], "module_parameters": counts}
        if "memory" not in self.config.skip:
            for system in ("teacher", "student"):
                if system in out:
                    mem = speed.peak_rss(system, self.config.student, self.config.voice, threads=1)
                    out[system].update(mem)
        return out

    # -- everything ------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.config
        started, load_before = time.perf_counter(), load_average()
        texts = read_sentences(cfg.text_file, cfg.limit)
        if not texts:
            raise ValueError(f"{cfg.text_file} has no sentences")
        from kdtts.evaluate.speed import SETTINGS

        SETTINGS[0].apply()  # one thread while synthesising and scoring
        utts = []
        for text in tqdm(texts, desc="evaluate", unit="sentence", disable=not cfg.progress, file=sys.stderr):
            utt = self.synthesize(text)
            self.score(utt)
            if cfg.save_audio:
                from kdtts.audio import write_wav

                for name, audio in utt.audio.items():
                    write_wav(cfg.out / "audio" / name / f"{len(utts):03d}.wav", audio, self.rate)
            utt.audio = {}
            utts.append(utt)
        SETTINGS[1].apply()
        speed = {} if "speed" in cfg.skip else self.speed(texts[:cfg.speed_sentences])
        sizes = self.sizes()
        report = self.assemble(texts, utts, speed, sizes)
        report["meta"]["wall_seconds"] = round(time.perf_counter() - started, 1)
        report["meta"]["load_average_1min"] = {"before": load_before, "after": load_average()}
        return _clean(report)

    def assemble(self, texts: list[str], utts: list[Utt], speed: dict, sizes: dict) -> dict:
        models: dict[str, dict] = {}
        pairs: dict[str, dict] = {}
        versus: dict[str, dict] = {}
        sentences = [{"text": u.text, **{s: u.metrics.get(s, {}) for s in self.systems}} for u in utts]
        for system in self.systems:
            rows = [u.metrics.get(system, {}) for u in utts]
            entry: dict = {k: None for k in REPORT_KEYS}
            if rows and "word_edits" in rows[0]:
                entry["wer"] = sum(r["word_edits"] for r in rows) / max(sum(r["words"] for r in rows), 1)
                entry["cer"] = sum(r["char_edits"] for r in rows) / max(sum(r["chars"] for r in rows), 1)
            for key in QUALITY_KEYS[2:] + PROSODY_KEYS:
                entry[key] = _nanmean([r.get(key) for r in rows])
            if system != "teacher":
                versus[system] = versus_teacher(sentences, system)
                entry.update({k: versus[system][k]["value"] for k in VS_TEACHER_KEYS if k in versus[system]})
            if system in PAIRS:
                pair = {key: _nanmean([r.get(key) for r in rows])
                        for key in FIDELITY_KEYS + F0_DETAIL_KEYS}
                pair["sentences"] = len(rows)
                pair["ci95"] = fidelity_intervals(sentences, system)
                pairs[PAIRS[system]] = pair
                entry.update({k: pair[k] for k in FIDELITY_KEYS})
            if system != "teacher" and rows and "samples" in rows[0]:
                ratios = [r["samples"] / max(u.metrics["teacher"]["samples"], 1) for r, u in zip(rows, utts)]
                entry["length_ratio"] = sum(r["samples"] for r in rows) / max(
                    sum(u.metrics["teacher"]["samples"] for u in utts), 1)
                entry["length_ratio_median_deviation"] = float(np.median(np.abs(np.asarray(ratios) - 1)))
            timing = speed.get(system, {})
            entry["rtf_1thread"] = timing.get("1thread", {}).get("end_to_end")
            entry["rtf_default"] = timing.get("default", {}).get("end_to_end")
            entry["rtf_modules"] = {name: t["modules"] for name, t in timing.items()}
            if system == "teacher" and timing:
                entry["rtf_full_graph"] = {name: t["full_graph"] for name, t in timing.items()}
            entry.update(sizes.get(system, {}))
            models[system] = entry
        speedup = _speedup(models)
        cfg = self.config
        student_label = cfg.student_label or (
            f"{cfg.student} ({(self.student.info or {}).get('steps', '?')} steps)" if self.student else None)
        report = {
            "meta": {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "command": cfg.command or " ".join(sys.argv), "machine": machine(),
                     "text_file": str(cfg.text_file), "sentences": len(texts),
                     "speed_sentences": min(cfg.speed_sentences, len(texts)), "repeats": cfg.repeats,
                     "warmup": cfg.warmup, "teacher": str(self.teacher.model_path),
                     "student": str(cfg.student) if cfg.student else None, "student_label": student_label,
                     "git": git_head(), "tier": cfg.tier, "skipped": dict(self.skipped, **{k: "skipped by --skip" for k in cfg.skip})},
            "models": models,
            "pairs": pairs,
            "versus_teacher": versus,
            "speedup_student_over_teacher": speedup,
            "sentences": sentences,
        }
        from kdtts.evaluate.goals import check_goals

        report["goals"] = check_goals(report, cfg.tier) if self.student is not None else []
        return report


def evaluate(config: EvalConfig) -> dict:
    """Run the evaluation and write report.json, report.md and the PNG plots into `config.out`."""
    config.out.mkdir(parents=True, exist_ok=True)
    report = Evaluation(config).run()
    (config.out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (config.out / "report.md").write_text(report_markdown(report), encoding="utf-8")
    plot_metrics(report, config.out / "metrics.png")
    plot_rtf(report, config.out / "rtf_modules.png")
    return report


def _speedup(models: dict[str, dict]) -> dict:
    """Student over teacher: RTF ratios end to end and per module, parameter and size ratios."""
    speedup: dict = {}
    if "student" not in models or not models["student"]["rtf_1thread"]:
        return speedup
    t, s = models["teacher"], models["student"]
    for name in ("1thread", "default"):
        key = f"rtf_{name}"
        if t[key] and s[key]:
            speedup[name] = t[key] / s[key]
            speedup[f"{name}_modules"] = {m: t["rtf_modules"][name][m] / s["rtf_modules"][name][m]
                                          for m in ("duration", "front", "decoder") if s["rtf_modules"][name].get(m)}
    if t.get("parameters") and s.get("parameters"):
        speedup["parameters_ratio"] = t["parameters"] / s["parameters"]
        speedup["bytes_ratio"] = t["bytes"] / s["bytes"]
    return speedup
