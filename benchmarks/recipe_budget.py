"""How well finished recipe runs kept their `--hours` budget: wall time per sitting (from the sittings'
start times and the run's last write), time counted against the budget, and each stage's share.

    python benchmarks/recipe_budget.py RUN_DIR [RUN_DIR ...] [--out benchmarks/results/recipe_budget.json]

Reads RUN_DIR/recipe_state.json (written by `python -m kdtts distill --recipe`); prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def summary(run: Path) -> dict:
    state = json.loads((run / "recipe_state.json").read_text())
    starts = [datetime.fromisoformat(s["started"]) for s in state["sittings"]]
    finished = datetime.fromtimestamp((run / "recipe_state.json").stat().st_mtime, tz=starts[0].tzinfo)
    budget = state["hours"] * 3600 if state.get("hours") else None
    stages = {name: {k: r.get(k) for k in ("seconds", "steps", "nominal_steps", "sittings")}
              for name, r in state["stages"].items()}
    return {"run": str(run), "recipe": state["recipe"], "budget_s": budget, "counted_s": state.get("seconds"),
            "span_s": round((finished - starts[0]).total_seconds(), 1), "sittings": len(starts),
            "world_size": state["sittings"][0].get("world_size", 1),
            "commands": [s["command"] for s in state["sittings"]], "stages": stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = [summary(run) for run in args.runs]
    print("| run | recipe | processes | sittings | budget s | counted s | first start to end s | slowest stage |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        slowest = max(r["stages"].items(), key=lambda kv: kv[1]["seconds"] or 0)
        print(f"| {r['run']} | {r['recipe']} | {r['world_size']} | {r['sittings']} | {r['budget_s'] or '–'} | "
              f"{r['counted_s']} | {r['span_s']} | {slowest[0]} ({slowest[1]['seconds']} s) |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
