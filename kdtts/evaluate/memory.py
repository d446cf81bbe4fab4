"""`python -m kdtts.evaluate.memory teacher|student`: peak RSS of one model in a process of its own.

Prints one JSON line: peak_rss_mb (whole process), baseline_rss_mb (after imports, before loading the
model) and model_rss_mb (the difference). Both models import the same modules, so the baselines match.

With `--worst-text`, it measures instead what the hardest accepted request costs the app: the model is
loaded as the app loads it (through the Engine), warmed up, the peak is reset, and then the longest
accepted text with no sentence punctuation is read at the largest length scale the app offers;
`request_peak_mb` is that request's peak above the idle process.
"""
from __future__ import annotations

import argparse
import json

SENTENCES = ("The weather forecast promises sunshine for most of the weekend.",
             "Please remember to water the plants while I am away.")


def _peak_mb() -> float:
    """Peak RSS of this process's own memory map (VmHWM). ru_maxrss is not used on Linux because it
    survives exec: a child started from a big parent would report the parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


WORST_TEXT_WORDS = ("seven", "quiet", "rivers", "wander", "under", "amber", "skies", "while", "distant",
                    "bells", "answer")
MAX_LENGTH_SCALE = 2.0  # the largest length scale the app's slider (and its server-side check) accepts


def worst_text() -> str:
    """The longest text `validate` accepts, with no sentence end to split at."""
    from kdtts.text import MAX_CHARS

    words, n = [], 0
    while n + len(WORST_TEXT_WORDS[len(words) % len(WORST_TEXT_WORDS)]) + 1 <= MAX_CHARS:
        words.append(WORST_TEXT_WORDS[len(words) % len(WORST_TEXT_WORDS)])
        n += len(words[-1]) + 1
    return " ".join(words)


def _current_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) / 1024.0 for line in f if line.startswith("VmRSS:"))


def worst_request(model: str, student: str | None, threads: int | None) -> dict[str, float]:
    """Peak RSS above idle of the worst accepted request, through the app's own Engine (Linux only)."""
    from kdtts.engine import Engine, Mix

    engine = Engine.load(None, student, threads, require_student=model == "student")
    scales = engine.teacher.default_scales
    engine.synthesize("Warm up, please.", Mix.of(model), scales)
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # reset VmHWM to the current RSS
    idle = _current_mb()
    text = worst_text()
    result = engine.synthesize(text, Mix.of(model), type(scales)(scales.noise, MAX_LENGTH_SCALE, scales.noise_w))
    peak = _peak_mb()
    return {"model": model, "characters": len(text), "audio_seconds": round(result.seconds, 1),
            "passes": result.sentences, "idle_rss_mb": round(idle, 1), "peak_rss_mb": round(peak, 1),
            "request_peak_mb": round(peak - idle, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=["teacher", "student"])
    parser.add_argument("--student")
    parser.add_argument("--voice")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--worst-text", action="store_true", help="peak above idle of the worst accepted request")
    args = parser.parse_args()
    if args.worst_text:
        print(json.dumps(worst_request(args.model, args.student, args.threads)))
        return

    import numpy as np
    import torch

    import kdtts.engine  # noqa: F401  (same imports for both models, so the baselines match)
    from kdtts.student.onnx_student import load_fast
    from kdtts.voice import Scales, speak

    if args.threads:
        torch.set_num_threads(args.threads)
    baseline = _peak_mb()
    if args.model == "teacher":
        # the real teacher: the unmodified Piper graph in one onnxruntime session, as Piper runs it
        # (PiperTeacher also holds the three cut sub-graphs for module-wise runs, which costs ~4x the memory)
        from kdtts.runtime import cpu_session
        from kdtts.teachers.piper import default_voice
        from kdtts.text import Phonemizer

        voice = args.voice or str(default_voice())
        with open(f"{voice}.json", encoding="utf-8") as f:
            phonemizer = Phonemizer(json.load(f))
        session = cpu_session(voice, args.threads)
        for text in SENTENCES:
            ids = np.asarray(phonemizer.ids(text), dtype=np.int64)[None]
            session.run(None, {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
                               "scales": Scales().deterministic().array()})
    else:
        # the student needs only the voice's phonemizer (its config), not the teacher's ONNX sessions
        from kdtts.teachers.piper import default_voice
        from kdtts.text import Phonemizer

        voice = args.voice or str(default_voice())
        with open(f"{voice}.json", encoding="utf-8") as f:
            phonemizer = Phonemizer(json.load(f))
        student = load_fast(args.student, args.threads)  # as the app and evaluation run it
        for text in SENTENCES:
            speak(np.asarray(phonemizer.ids(text)), Scales(), student, student, student)
    peak = _peak_mb()
    print(json.dumps({"peak_rss_mb": round(peak, 1), "baseline_rss_mb": round(baseline, 1),
                      "model_rss_mb": round(peak - baseline, 1)}))


if __name__ == "__main__":
    main()
