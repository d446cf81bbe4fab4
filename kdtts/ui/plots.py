"""Matplotlib figures for the app, written as PNG files (they travel as files through the API too)."""
from __future__ import annotations

import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from kdtts.audio import log_mel
from kdtts.distill.callbacks import MATPLOTLIB_LOCK

_LOCK = MATPLOTLIB_LOCK  # pyplot's state machine and matplotlib's text layout are not thread-safe
TEACHER_COLOUR, STUDENT_COLOUR = "#1f77b4", "#ff7f0e"
PAD = "_"
MAX_PHONEMES_SHOWN = 80
MEL_INCHES_PER_SECOND, MAX_MEL_INCHES = 0.9, 60  # a long text's mel grows wide (the page scrolls it), never squeezed


def _save(fig, out_dir: Path, stem: str) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}-{uuid.uuid4().hex[:8]}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)


def mels(teacher_audio: np.ndarray, student_audio: np.ndarray | None, rate: int, hop: int, out_dir: Path,
         student_label: str = "student") -> str:
    """Teacher and student log-mels on one colour scale and one time axis, plus their difference (frame
    by frame when the student read with the teacher's durations, which is what the app passes)."""
    specs = [("teacher", log_mel(teacher_audio).numpy())]
    if student_audio is not None:
        specs.append((student_label, log_mel(student_audio).numpy()))
    vmin = min(float(s.min()) for _, s in specs)
    vmax = max(float(s.max()) for _, s in specs)
    seconds = max(s.shape[1] for _, s in specs) * hop / rate
    rows = len(specs) + (1 if len(specs) == 2 else 0)
    with _LOCK:
        width = min(MAX_MEL_INCHES, max(10.0, MEL_INCHES_PER_SECOND * seconds))
        fig, axes = plt.subplots(rows, 1, figsize=(width, 2.3 * rows), sharex=True, squeeze=False)
        axes = axes[:, 0]
        for ax, (name, spec) in zip(axes, specs):
            image = ax.imshow(spec, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="magma",
                              extent=(0, spec.shape[1] * hop / rate, 0, spec.shape[0]))
            ax.set_ylabel("mel band")
            ax.set_title(f"{name} log-mel", fontsize=10, loc="left")
            fig.colorbar(image, ax=ax, pad=0.01, label="log magnitude")
        if len(specs) == 2:
            t, s = specs[0][1], specs[1][1]
            note = "frame by frame"
            if s.shape[1] != t.shape[1]:  # different durations: stretch the student onto the teacher's frames
                grid = np.linspace(0, s.shape[1] - 1, t.shape[1])
                s = np.stack([np.interp(grid, np.arange(s.shape[1]), row) for row in s])
                note = "student time-stretched onto the teacher's frames"
            diff = s - t
            bound = max(1e-3, float(np.percentile(np.abs(diff), 99)))
            image = axes[-1].imshow(diff, origin="lower", aspect="auto", cmap="coolwarm", vmin=-bound, vmax=bound,
                                    extent=(0, t.shape[1] * hop / rate, 0, t.shape[0]))
            axes[-1].set_title(f"difference: {student_label} − teacher ({note}); mean |diff| {np.abs(diff).mean():.2f}",
                               fontsize=10, loc="left")
            axes[-1].set_ylabel("mel band")
            fig.colorbar(image, ax=axes[-1], pad=0.01, label="log ratio")
        axes[-1].set_xlim(0, seconds)
        axes[-1].set_xlabel("time (s)")
        fig.tight_layout()
        return _save(fig, out_dir, "mels")


def phoneme_durations(ids: np.ndarray, durations: np.ndarray, id_to_symbol: dict[int, str]) -> tuple[list[str], np.ndarray]:
    """Per phoneme: its own frames plus the following blank (pad) id's, as Piper intersperses them."""
    labels: list[str] = []
    frames: list[int] = []
    for i, d in zip(ids.tolist(), durations.tolist()):
        symbol = id_to_symbol.get(i, "?")
        if symbol == PAD and labels:
            frames[-1] += d
        else:
            labels.append(symbol if symbol.strip() else "␣")
            frames.append(d)
    return labels, np.asarray(frames)


def durations(labels: list[str], teacher: np.ndarray, student: np.ndarray | None, hop: int, rate: int,
              out_dir: Path) -> str:
    """Grouped bars: milliseconds per phoneme, teacher vs student; a long text shows its first
    MAX_PHONEMES_SHOWN phonemes (labels stay legible) and says so."""
    ms = 1000.0 * hop / rate
    total = len(labels)
    if total > MAX_PHONEMES_SHOWN:
        labels, teacher = labels[:MAX_PHONEMES_SHOWN], teacher[:MAX_PHONEMES_SHOWN]
        student = None if student is None else student[:MAX_PHONEMES_SHOWN]
    x = np.arange(len(labels))
    with _LOCK:
        fig, ax = plt.subplots(figsize=(10, 3.0))
        width = 0.4 if student is not None else 0.8
        ax.bar(x - (width / 2 if student is not None else 0), teacher * ms, width, label="teacher", color=TEACHER_COLOUR)
        if student is not None:
            ax.bar(x + width / 2, student * ms, width, label="student", color=STUDENT_COLOUR)
        ax.set_xticks(x, labels, fontsize=8 if len(labels) < 60 else 6)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_ylabel("duration (ms)")
        shown = f"; the first {len(labels)} of {total} phonemes" if total > len(labels) else ""
        ax.set_title(f"per-phoneme durations (blank ids merged into the phoneme before them{shown})", fontsize=10,
                     loc="left")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        return _save(fig, out_dir, "durations")


def timings(stages: list[str], teacher: dict[str, float], student: dict[str, float] | None, out_dir: Path) -> str:
    """Milliseconds per module, teacher vs student."""
    y = np.arange(len(stages))
    with _LOCK:
        fig, ax = plt.subplots(figsize=(7, 2.6))
        height = 0.4 if student is not None else 0.8
        ax.barh(y + (height / 2 if student is not None else 0), [1000 * teacher[s] for s in stages], height,
                label="teacher", color=TEACHER_COLOUR)
        if student is not None:
            ax.barh(y - height / 2, [1000 * student[s] for s in stages], height, label="student", color=STUDENT_COLOUR)
        ax.set_yticks(y, stages)
        ax.invert_yaxis()
        ax.set_xlabel("compute time (ms)")
        ax.set_title("time per module (this request)", fontsize=10, loc="left")
        ax.legend(fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        return _save(fig, out_dir, "timings")


def losses(rows: list[dict[str, float]], out_dir: Path, title: str = "fine-tune losses") -> str | None:
    """Training loss per step (and each module's KD term), log scale."""
    if not rows:
        return None
    keys = [k for k in rows[-1] if k not in ("step", "lr", "seconds")]
    with _LOCK:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        steps = [r["step"] for r in rows]
        for key in keys:
            values = [r.get(key, np.nan) for r in rows]
            marker = "o" if key.startswith("val_") else None
            if key.startswith("val_"):
                pts = [(s, v) for s, v in zip(steps, values) if v == v]
                if pts:
                    ax.plot(*zip(*pts), marker=marker, linestyle="--", label=key)
            else:
                ax.plot(steps, values, label=key, linewidth=2 if key == "loss" else 1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        ax.set_title(title, fontsize=10, loc="left")
        fig.tight_layout()
        return _save(fig, out_dir, "losses")


def diagram(out_dir: Path) -> str:
    """The module-wise distillation diagram: teacher row, student row, a KD loss per module."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    boxes = ["text → phoneme ids", "duration", "front (latent z)", "decoder"]
    with _LOCK:
        fig, ax = plt.subplots(figsize=(10, 3.4))
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 4)
        ax.axis("off")
        for name, colour, y in (("teacher (VITS, 15.7 M)", TEACHER_COLOUR, 2.9),
                                ("student (tiny)", STUDENT_COLOUR, 0.5)):
            ax.text(0.05, y + 0.75, name, fontsize=10, color=colour, weight="bold")
            for i, box in enumerate(boxes):
                x = 0.1 + i * 2.5
                shared = i == 0
                ax.add_patch(FancyBboxPatch((x, y), 2.0, 0.6, boxstyle="round,pad=0.05",
                                            fc="#eeeeee" if shared else colour, alpha=0.9 if shared else 0.35, ec=colour))
                ax.text(x + 1.0, y + 0.3, box if not shared else "phonemes (shared)", ha="center", va="center", fontsize=9)
                if i < 3:
                    ax.add_patch(FancyArrowPatch((x + 2.05, y + 0.3), (x + 2.45, y + 0.3), arrowstyle="->", mutation_scale=12))
        for i, label in enumerate(["durations", "z (192 × frames)", "waveform"], start=1):
            x = 0.1 + i * 2.5 + 1.0
            ax.add_patch(FancyArrowPatch((x, 2.85), (x, 1.15), arrowstyle="<->", mutation_scale=12, color="#555555"))
            ax.text(x + 0.08, 2.0, f"KD loss on\n{label}", fontsize=8, va="center")
        fig.tight_layout()
        return _save(fig, out_dir, "diagram")


def quality_speed(points: list[dict], out_dir: Path) -> str | None:
    """Predicted quality against speed, one point per system (name, family, parameters, rtf_1thread,
    dnsmos_p808): where each student sits between its teacher and Griffin-Lim. None without points."""
    points = [p for p in points if p.get("rtf_1thread") and p.get("dnsmos_p808")]
    if not points:
        return None
    markers = {"tts": "o", "vocoder": "s", "none": "x"}
    with _LOCK:
        fig, ax = plt.subplots(figsize=(8, 4.2))
        for p in points:
            colour = TEACHER_COLOUR if p["role"] == "teacher" else STUDENT_COLOUR if p["role"] == "student" else "#777777"
            ax.scatter(1 / p["rtf_1thread"], p["dnsmos_p808"], s=60, marker=markers[p["family"]], color=colour,
                       zorder=3)
            size = f", {p['parameters'] / 1e6:.2f} M" if p.get("parameters") else ""
            ax.annotate(f"{p['name']}{size}", (1 / p["rtf_1thread"], p["dnsmos_p808"]), textcoords="offset points",
                        xytext=(6, 5), fontsize=8)
        ax.set_xscale("log")
        ax.margins(x=0.3, y=0.12)  # room for the labels
        ax.set_xlabel("times faster than real time, one CPU thread (log scale)")
        ax.set_ylabel("DNSMOS P.808 (predicted MOS)")
        ax.set_title("Quality against speed (circles: text to speech; squares: mel to audio)", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        return _save(fig, out_dir, "quality-speed")
