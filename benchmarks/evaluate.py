"""Run the evaluation suite and write benchmarks/RESULTS.md (+ results/report.json and the plots).

    python benchmarks/evaluate.py                 # 40 held-out sentences, the best student available
    python benchmarks/evaluate.py --limit 10      # quicker

The student is assets/student.safetensors when it exists; otherwise runs/smoke/student.safetensors, or a
randomly initialised one, and the report marks it "untrained placeholder".
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdtts.evaluate.markdown import report_markdown  # noqa: E402
from kdtts.evaluate.report import HELDOUT, EvalConfig, evaluate  # noqa: E402


def pick_student(path: str | None) -> tuple[Path, str]:
    from kdtts.student.checkpoint import SHIPPED_STUDENT, read_metadata, save_student

    if path:
        steps = read_metadata(path)["info"].get("steps", "?")
        return Path(path), f"`{path}` ({steps} training steps)"
    if SHIPPED_STUDENT.exists():
        steps = read_metadata(SHIPPED_STUDENT)["info"].get("steps", "?")
        return SHIPPED_STUDENT, f"shipped student `assets/student.safetensors` ({steps} training steps)"
    smoke = ROOT / "runs" / "smoke" / "student.safetensors"
    if smoke.exists():
        steps = read_metadata(smoke)["info"].get("steps", "?")
        return smoke, (f"**untrained placeholder**: `runs/smoke/student.safetensors` ({steps} training steps of a "
                       "smoke run); re-run once assets/student.safetensors exists")
    import torch

    from kdtts.student.model import StudentTTS

    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp()) / "random.safetensors"
    return save_student(StudentTTS(), tmp, {"steps": 0}), "**untrained placeholder**: random initialisation"


def render(report: dict, results: Path) -> Path:
    """benchmarks/RESULTS.md from a report (the evaluation's own report.md, with a header)."""
    header = [
        "# Benchmark results", "",
        "Produced by `benchmarks/evaluate.py` (the `python -m kdtts evaluate` suite). "
        "Teacher, student and Griffin-Lim are measured in the same run on the same machine. The machine is "
        "shared and noisy (see the load average): trust medians and ratios, not absolute seconds.", "",
        f"- machine: `nproc` = {report['meta']['machine']['nproc']}, {report['meta']['machine']['platform']}",
        "- full report: [results/report.json](results/report.json); plots at the end", "", ""]
    plots = ["![metrics](results/metrics.png)", "", "![RTF per module](results/rtf_modules.png)", ""]
    path = results / "RESULTS.md"
    path.write_text("\n".join(header) + report_markdown(report).replace("# kdtts evaluation", "## kdtts evaluation", 1)
                    + "\n".join(plots), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", help="checkpoint (default: shipped, else smoke run, else random)")
    parser.add_argument("--limit", type=int, help="first N held-out sentences (default: all 40)")
    parser.add_argument("--speed-sentences", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "evaluate"),
                        help="working folder for the full report (default: runs/benchmarks/evaluate)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks"), help="where RESULTS.md goes")
    parser.add_argument("--render-only", action="store_true", help="rewrite RESULTS.md from OUT/report.json")
    args = parser.parse_args()

    out, results = Path(args.out), Path(args.results)
    if args.render_only:
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    else:
        student, label = pick_student(args.student)
        command = ("python benchmarks/evaluate.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])).strip()
        report = evaluate(EvalConfig(text_file=HELDOUT, student=student, student_label=label, out=out,
                                     limit=args.limit, speed_sentences=args.speed_sentences, repeats=args.repeats,
                                     command=command))
    (results / "results").mkdir(parents=True, exist_ok=True)
    for name in ("report.json", "metrics.png", "rtf_modules.png"):
        shutil.copy(out / name, results / "results" / name)
    print(f"wrote {render(report, results)}")


if __name__ == "__main__":
    main()
