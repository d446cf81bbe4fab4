"""`python -m kdtts.evaluate.memory teacher|student`: peak RSS of one model in a process of its own.

Prints one JSON line: peak_rss_mb (whole process), baseline_rss_mb (after imports, before loading the
model) and model_rss_mb (the difference). Both models import the same modules, so the baselines match.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=["teacher", "student"])
    parser.add_argument("--student")
    parser.add_argument("--voice")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()

    import torch

    import kdtts.engine  # noqa: F401  (same imports for both models, so the baselines match)
    from kdtts.student.checkpoint import load_student

    if args.threads:
        torch.set_num_threads(args.threads)
    baseline = _peak_mb()
    if args.model == "teacher":
        # the real teacher: the unmodified Piper graph in one onnxruntime session, as Piper runs it
        # (PiperTeacher also holds the three cut sub-graphs for module-wise runs, which costs ~4x the memory)
        import numpy as np
        import onnxruntime as ort

        from kdtts.teachers.piper import Scales, default_voice, session_options
        from kdtts.text import Phonemizer

        voice = args.voice or str(default_voice())
        with open(f"{voice}.json", encoding="utf-8") as f:
            phonemizer = Phonemizer(json.load(f))
        session = ort.InferenceSession(voice, session_options(args.threads), providers=["CPUExecutionProvider"])
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
        student = load_student(args.student, "onnx", args.threads)  # as the app and evaluation run it
        for text in SENTENCES:
            student.run_ids(phonemizer.ids(text))
    peak = _peak_mb()
    print(json.dumps({"peak_rss_mb": round(peak, 1), "baseline_rss_mb": round(baseline, 1),
                      "model_rss_mb": round(peak - baseline, 1)}))


if __name__ == "__main__":
    main()
