"""report.md: the report as tables a person reads."""
from __future__ import annotations

from pathlib import Path

from kdtts.evaluate.schema import NAMES, SYSTEMS

ROWS = [  # key, label, unit / direction, format
    ("wer", "WER (pocketsphinx)", "ratio, lower is better", "{:.3f}"),
    ("cer", "CER (pocketsphinx)", "ratio, lower is better", "{:.3f}"),
    ("dnsmos_ovrl", "DNSMOS OVRL", "MOS 1-5, higher is better", "{:.2f}"),
    ("dnsmos_sig", "DNSMOS SIG", "MOS 1-5, higher is better", "{:.2f}"),
    ("dnsmos_bak", "DNSMOS BAK", "MOS 1-5, higher is better", "{:.2f}"),
    ("dnsmos_p808", "DNSMOS P.808", "MOS 1-5, higher is better", "{:.2f}"),
    ("mcd_db", "MCD vs teacher", "dB, lower is better", "{:.2f}"),
    ("mcd_8k_db", "MCD 0-8 kHz vs teacher", "dB, lower is better", "{:.2f}"),
    ("pesq_wb", "PESQ-WB vs teacher", "1-4.64, higher is better", "{:.2f}"),
    ("stoi", "STOI vs teacher", "0-1, higher is better", "{:.3f}"),
    ("f0_rmse_hz", "F0 RMSE vs teacher", "Hz, lower is better", "{:.1f}"),
    ("mel_distance", "Log-mel distance vs teacher", "mean L1 per band, lower is better", "{:.3f}"),
    ("f0_sd_st", "F0 SD over voiced frames", "semitones re 100 Hz", "{:.2f}"),
    ("f0_range_st", "F0 5-95 % range", "semitones", "{:.2f}"),
    ("f0_sd_ratio", "F0 SD / teacher's", "ratio of means, 1 is best", "{:.3f}"),
    ("f0_range_ratio", "F0 range / teacher's", "ratio of means, 1 is best", "{:.3f}"),
    ("loudness_lufs", "Integrated loudness (BS.1770)", "LUFS", "{:.1f}"),
    ("loudness_diff_lu", "Loudness - teacher's, mean", "LU, 0 is best", "{:+.2f}"),
    ("loudness_worst_lu", "Loudness - teacher's, worst sentence", "max abs LU, lower is better", "{:.2f}"),
    ("length_ratio", "Audio length / teacher's (total)", "ratio, 1 is best", "{:.3f}"),
    ("length_ratio_median_deviation", "Median per-sentence abs(length ratio - 1)", "ratio, lower is better", "{:.3f}"),
    ("rtf_1thread", "RTF end to end, 1 thread", "compute s / audio s, lower is better", "{:.4f}"),
    ("rtf_default", "RTF end to end, default threads", "compute s / audio s, lower is better", "{:.4f}"),
    ("parameters", "Parameters", "count", "{:,}"),
    ("bytes", "Bytes on disk", "bytes", "{:,}"),
    ("peak_rss_mb", "Peak RSS (whole process)", "MB", "{:.0f}"),
    ("model_rss_mb", "Peak RSS above imports", "MB", "{:.0f}"),
]


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _header(report: dict) -> list[str]:
    meta = report["meta"]
    lines = [f"# kdtts evaluation — {meta['sentences']} sentences", ""]
    lines += [f"- date: {meta['date']}; git {meta.get('git')}",
              f"- machine: {meta['machine']['cpu']}, {meta['machine']['nproc']} cores, "
              f"{meta['machine']['platform']}, torch {meta['machine']['torch']}, "
              f"onnxruntime {meta['machine']['onnxruntime']}",
              f"- command: `{meta['command']}`; wall time {meta.get('wall_seconds')} s; 1-min load average "
              f"before / after {(meta.get('load_average_1min') or {}).get('before')} / "
              f"{(meta.get('load_average_1min') or {}).get('after')}",
              f"- teacher: `{Path(meta['teacher']).name}` (deterministic: noise scales 0)"]
    if meta.get("student"):
        lines.append(f"- \\* student: {meta['student_label']}")
    return lines


VERSUS_LABELS = {"dnsmos_p808": "DNSMOS P.808", "dnsmos_ovrl": "DNSMOS OVRL", "dnsmos_sig": "DNSMOS SIG",
                 "dnsmos_bak": "DNSMOS BAK", "wer": "WER (pooled)", "cer": "CER (pooled)",
                 "f0_sd_ratio": "F0 SD ratio", "f0_range_ratio": "F0 range ratio",
                 "loudness_diff_lu": "loudness, mean (LU)", "loudness_worst_lu": "loudness, worst sentence (LU)"}


def _versus_teacher(report: dict) -> list[str]:
    """Every system against the teacher with paired 95 % bootstrap intervals over sentences."""
    versus = report.get("versus_teacher") or {}
    rows = []
    for system, metrics in versus.items():
        for key, label in VERSUS_LABELS.items():
            m = metrics.get(key)
            if m:
                fmt = "{:+.3f}" if m["statistic"] == "difference" else "{:.3f}"
                low, high = (fmt.format(v) for v in m["ci95"])
                rows.append(f"| {NAMES.get(system, system)} | {label} | {m['statistic']} | {fmt.format(m['value'])} | "
                            f"[{low}, {high}] | {m['sentences']} |")
    if not rows:
        return []
    return ["## Against the teacher, sentence by sentence", "",
            "Paired bootstrap (scipy.stats.bootstrap, BCa, resampling sentences) 95 % intervals. Differences are "
            "system minus teacher; ratios are the system's mean over the teacher's (F0 in semitones re 100 Hz, "
            "WORLD DIO + StoneMask, voiced frames); loudness is ITU-R BS.1770 integrated loudness per sentence.", "",
            "| system | metric | statistic | value | 95 % interval | sentences |", "|---|---|---|---:|---|---:|",
            *rows, ""]


def report_markdown(report: dict) -> str:
    meta, models = report["meta"], report["models"]
    systems = [s for s in SYSTEMS if s in models]
    header = [NAMES[s] + (" *" if s == "student" else "") for s in systems]
    lines = _header(report)
    lines += ["", "| metric | unit | " + " | ".join(header) + " |", "|---|---|" + "---:|" * len(systems)]
    for key, label, unit, fmt in ROWS:
        lines.append(f"| {label} | {unit} | " + " | ".join(_fmt(models[s].get(key), fmt) for s in systems) + " |")
    lines += ["", "Fidelity rows compare with the teacher's audio; the student is run with the teacher's durations "
              "for them (sample-aligned), and with its own durations for WER, DNSMOS and speed. Griffin-Lim inverts "
              "the teacher's 80-band mel (32 iterations); its timings are the vocoder alone. WER/CER are pooled "
              "over all sentences; other quality rows are means over sentences.", ""]

    rtf_rows = []
    for s in systems:
        for setting, modules in models[s].get("rtf_modules", {}).items():
            cells = [modules.get(m) for m in ("text", "duration", "front", "decoder", "total")]
            rtf_rows.append(f"| {NAMES[s]} | {setting} | " + " | ".join(_fmt(c, "{:.4f}") for c in cells) + " |")
        for setting, full in models[s].get("rtf_full_graph", {}).items():
            rtf_rows.append(f"| {NAMES[s]} (unmodified graph) | {setting} | {_fmt(full.get('text'), '{:.4f}')} | "
                            f"{_fmt(full.get('graph'), '{:.4f}')} (all three) | | | {_fmt(full.get('total'), '{:.4f}')} |")
    if rtf_rows:
        lines += [f"## Real-time factor per module (median of {meta['repeats']} runs after {meta['warmup']} warm-up, "
                  f"{meta['speed_sentences']} sentences)", "",
                  "| model | threads | text | duration | front | decoder | total |",
                  "|---|---|---:|---:|---:|---:|---:|", *rtf_rows, ""]
    speedup = report.get("speedup_student_over_teacher") or {}
    if speedup:
        lines += ["## Student vs teacher", ""]
        for name in ("1thread", "default"):
            if name in speedup:
                mods = ", ".join(f"{m} {v:.1f}x" for m, v in speedup.get(f"{name}_modules", {}).items())
                lines.append(f"- speed-up end to end, {name}: **{speedup[name]:.1f}x** (per module: {mods})")
        if "parameters_ratio" in speedup:
            lines.append(f"- {speedup['parameters_ratio']:.1f}x fewer parameters, "
                         f"{speedup['bytes_ratio']:.1f}x fewer bytes on disk")
        lines.append("")
    pairs = report.get("pairs") or {}
    if pairs:
        lines += ["## Pairs against the teacher", "", "| pair | MCD dB | MCD 0-8 kHz dB | PESQ-WB | STOI | F0 RMSE Hz | F0 gross error | V/UV error "
                  "| F0 fine RMSE Hz | FFE |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, p in pairs.items():
            lines.append(f"| {name} | {_fmt(p.get('mcd_db'), '{:.2f}')} | {_fmt(p.get('mcd_8k_db'), '{:.2f}')} | "
                         f"{_fmt(p.get('pesq_wb'), '{:.2f}')} | "
                         f"{_fmt(p.get('stoi'), '{:.3f}')} | {_fmt(p.get('f0_rmse_hz'), '{:.1f}')} | "
                         f"{_fmt(p.get('f0_gross_error'), '{:.3f}')} | {_fmt(p.get('vuv_error'), '{:.3f}')} | "
                         f"{_fmt(p.get('f0_fine_rmse_hz'), '{:.1f}')} | {_fmt(p.get('ffe'), '{:.3f}')} |")
        lines.append("")
        for name, p in pairs.items():
            ci = ", ".join(f"{key} [{low:.3f}, {high:.3f}]" for key, (low, high) in (p.get("ci95") or {}).items())
            if ci:
                lines.append(f"- {name}, 95 % bootstrap intervals of the means: {ci}")
        lines.append("")
    lines += _versus_teacher(report)
    if report.get("goals"):
        lines += [f"## Student goals (tier {meta.get('tier', 'small')})", "", "| goal | measured | target | met |", "|---|---:|---|---|"]
        for g in report["goals"]:
            value = f"{g['value']:,.0f}" if g["value"] >= 1000 else f"{g['value']:.3f}"
            lines.append(f"| {g['goal']} | {value} | {g['target']} | {'yes' if g['passed'] else '**no**'} |")
        lines.append("")
    if meta.get("skipped"):
        lines += ["## Not measured", ""] + [f"- {k}: {v}" for k, v in meta["skipped"].items()] + [""]
    return "\n".join(lines)
