"""PNG plots: per-metric bars (teacher vs student vs Griffin-Lim) and real-time factor per module."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kdtts.evaluate.schema import FIDELITY_KEYS, NAMES, PROSODY_KEYS, QUALITY_KEYS, SYSTEMS  # noqa: E402

COLORS = {"teacher": "#4C72B0", "student": "#DD8452", "griffinlim": "#8C8C8C"}
STAGE_COLORS = {"text": "#937860", "duration": "#55A868", "front": "#4C72B0", "decoder": "#C44E52"}


def plot_metrics(report: dict, path: Path) -> Path:
    """One small bar chart per quality/fidelity metric, a bar per system (missing values left out)."""
    models = report["models"]
    systems = [s for s in SYSTEMS if s in models]
    keys = QUALITY_KEYS + FIDELITY_KEYS + PROSODY_KEYS
    rows = -(-len(keys) // 5)
    fig, axes = plt.subplots(rows, 5, figsize=(16, 3.25 * rows))
    for ax, key in zip(axes.flat, keys):
        names = [s for s in systems if models[s].get(key) is not None]
        values = [models[s][key] for s in names]
        bars = ax.bar([NAMES[s] for s in names], values, color=[COLORS[s] for s in names])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(key, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        if not names:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"kdtts evaluation, {report['meta']['sentences']} sentences "
                 "(fidelity metrics are against the teacher)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_rtf(report: dict, path: Path) -> Path:
    """Stacked bars of RTF per module (text, duration, front, decoder) per system and thread setting."""
    models = report["models"]
    labels, stacks = [], []
    for s in SYSTEMS:
        for setting, modules in (models.get(s, {}).get("rtf_modules") or {}).items():
            labels.append(f"{NAMES[s]}\n{setting}")
            stacks.append(modules)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(labels) + 2), 4.5))
    bottom = [0.0] * len(labels)
    for stage, color in STAGE_COLORS.items():
        values = [m.get(stage) or 0.0 for m in stacks]
        ax.bar(labels, values, bottom=bottom, label=stage, color=color)
        bottom = [b + v for b, v in zip(bottom, values)]
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{total:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("real-time factor (compute s / audio s)")
    ax.set_title("RTF per module (median); Griffin-Lim: vocoder only")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
