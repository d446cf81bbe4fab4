"""The student in int8: onnxruntime's dynamic and static quantisation, module by module, measured.

Each of the exported student's three graphs (duration, front, decoder) is quantised on its own and all
together, dynamically (int8 weights, activations quantised at run time) and statically (QDQ, int8 weights
per channel and activations calibrated on what the modules see for a few held-out sentences, made by the
teacher and the fp32 student: the student's own durations and z, and the teacher's durations). Every
variant is then measured on sentences the calibration never saw:

- quality, the evaluation panel's measures: F0 SD and 5-95 % range as ratios to the teacher's
  (min(r, 1/r)), BS.1770 loudness difference and DNSMOS P.808 on the student's own reading; PESQ-WB and STOI
  against the teacher with the teacher's durations (sample-aligned);
- speed: seconds per module and end to end at one thread, as RTF: every variant timed once per round,
  in turn (median of 5 rounds after a warm-up round), so a shared machine's load falls on all alike;
- size: bytes of the three graphs.

An int8 variant would be shipped as `--precision int8` only if it is faster end to end than fp32 AND within
0.05 of fp32's P.808 AND within 0.02 of both prosody ratios; otherwise the measurement is the result.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/int8.py [--sentences 12] [--calibration 6]

Writes benchmarks/results/int8.json and int8.md (the table, also printed).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static  # noqa: E402

from kdtts.distill.corpus import read_heldout  # noqa: E402
from kdtts.evaluate import dnsmos, intrusive, loudness, prosody  # noqa: E402
from kdtts.student.checkpoint import SHIPPED_STUDENT  # noqa: E402
from kdtts.student.export import export_onnx  # noqa: E402
from kdtts.student.onnx_student import OnnxStudent  # noqa: E402
from kdtts.teachers.piper import PiperTeacher  # noqa: E402
from kdtts.voice import speak  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
MODULES = ("duration", "front", "decoder")
MAX_P808_DROP, MAX_RATIO_DROP = 0.05, 0.02  # |difference| to fp32


class Feeds(CalibrationDataReader):
    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def sentences(teacher: PiperTeacher, texts: list[str]) -> list[np.ndarray]:
    return [np.asarray(u.ids, dtype=np.int64) for text in texts for u in teacher.phonemizer(text)]


def calibration(student: OnnxStudent, teacher: PiperTeacher, ids: list[np.ndarray]) -> dict[str, list[dict]]:
    """Each module's inputs as the pipeline gives them: the student's and the teacher's durations and z."""
    scales = teacher.default_scales.deterministic()
    feeds: dict[str, list[dict]] = {m: [] for m in MODULES}
    for sentence in ids:
        feeds["duration"].append({"ids": sentence[None]})
        for durations in (student.durations(sentence, scales), teacher.durations(sentence, scales)):
            feeds["front"].append({"ids": sentence[None], "durations": durations[None],
                                   "frame_ref": np.zeros(int(durations.sum()), dtype=np.float32)})
            feeds["decoder"].append({"z": student.latent(sentence, durations, scales)[None]})
    return feeds


def quantise(fp32: Path, out: Path, mode: str, modules: tuple[str, ...], feeds: dict[str, list[dict]]) -> Path:
    """A copy of the fp32 export with `modules` quantised (`mode`: dynamic or static)."""
    shutil.copytree(fp32, out)
    for module in modules:
        source, target = fp32 / f"{module}.onnx", out / f"{module}.onnx"
        if mode == "dynamic":
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        else:
            quantize_static(source, target, Feeds(feeds[module]), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return out


def closeness(ratio: float) -> float:
    return float(min(ratio, 1.0 / ratio))


def quality(student: OnnxStudent, teacher: PiperTeacher, ids: list[np.ndarray], reference: list[dict]) -> dict:
    """The panel's measures over the sentences (means; prosody ratios are ratios of means)."""
    scales, rate = teacher.default_scales.deterministic(), teacher.sample_rate
    rows = []
    for sentence, ref in zip(ids, reference):
        own = speak(sentence, scales, student, student, student).audio
        aligned = speak(sentence, scales, student, student, student, durations=ref["durations"]).audio
        rows.append({**prosody.prosody(own, rate), "loudness_lufs": loudness.integrated_loudness(own, rate),
                     "dnsmos_p808": dnsmos.dnsmos(own, rate)["dnsmos_p808"],
                     "pesq_wb": intrusive.pesq_wb(ref["audio"], aligned, rate),
                     "stoi": intrusive.stoi(ref["audio"], aligned, rate)})

    def mean(rows: list[dict], key: str) -> float:
        return float(np.nanmean([r[key] for r in rows]))

    return {"f0_sd_ratio": closeness(mean(rows, "f0_sd_st") / mean(reference, "f0_sd_st")),
            "f0_range_ratio": closeness(mean(rows, "f0_range_st") / mean(reference, "f0_range_st")),
            "loudness_mean_lu": abs(mean(rows, "loudness_lufs") - mean(reference, "loudness_lufs")),
            "dnsmos_p808": mean(rows, "dnsmos_p808"), "pesq_wb": mean(rows, "pesq_wb"), "stoi": mean(rows, "stoi")}


def one_pass(student: OnnxStudent, teacher: PiperTeacher, ids: list[np.ndarray]) -> tuple[dict[str, float], int]:
    """Seconds per module over the sentences, and the samples made."""
    scales = teacher.default_scales.deterministic()
    seconds, samples = {m: 0.0 for m in MODULES}, 0
    for sentence in ids:
        spoken = speak(sentence, scales, student, student, student)
        for m in MODULES:
            seconds[m] += spoken.timings[m]
        samples += len(spoken.audio)
    return seconds, samples


def speeds(students: dict[str, OnnxStudent], teacher: PiperTeacher, ids: list[np.ndarray], rounds: int) -> dict:
    """Per variant: seconds per module (median over `rounds`) and RTF end to end. Every round times every
    variant once, in turn, so a shared machine's changing load falls on all of them alike."""
    passes: dict[str, list[dict[str, float]]] = {name: [] for name in students}
    samples = 0
    for k in range(rounds + 1):  # round 0 warms up
        for name, student in students.items():
            seconds, samples = one_pass(student, teacher, ids)
            if k:
                passes[name].append(seconds)
    audio = samples / teacher.sample_rate
    out = {}
    for name, runs in passes.items():
        seconds = {m: statistics.median(run[m] for run in runs) for m in MODULES}
        out[name] = {"seconds": seconds, "rtf": sum(seconds.values()) / audio,
                     "rtf_modules": {m: v / audio for m, v in seconds.items()}}
    return out


def reference_rows(teacher: PiperTeacher, ids: list[np.ndarray]) -> list[dict]:
    scales, rate = teacher.default_scales.deterministic(), teacher.sample_rate
    rows = []
    for sentence in ids:
        out = teacher.full(sentence, scales)
        rows.append({"audio": out.audio, "durations": out.durations, **prosody.prosody(out.audio, rate),
                     "loudness_lufs": loudness.integrated_loudness(out.audio, rate)})
    return rows


def fp32_floor(results: dict) -> dict[str, float]:
    """Per module, the fastest time its fp32 graph took in any variant that left it in fp32: identical graphs
    timed in the same rounds differ by the machine's noise (by a quarter on a loaded 2-core machine), so a
    quantised module is only faster if it beats its own fp32 graph's best time."""
    return {m: min(r["speed"]["seconds"][m] for name, r in results.items()
                   if name == "fp32" or (m not in name and "all" not in name)) for m in MODULES}


def verdict(fp32: dict, variant: dict, name: str, floor: dict[str, float]) -> dict:
    """The shipping rule: faster end to end and in every quantised module beyond the noise (fp32_floor), and
    P.808 and both prosody ratios within their margins of fp32's."""
    quantised = MODULES if "all" in name else [m for m in MODULES if m in name]
    faster = variant["speed"]["rtf"] < fp32["speed"]["rtf"] and all(
        variant["speed"]["seconds"][m] < floor[m] for m in quantised)
    p808 = abs(fp32["quality"]["dnsmos_p808"] - variant["quality"]["dnsmos_p808"]) <= MAX_P808_DROP
    ratios = all(abs(fp32["quality"][k] - variant["quality"][k]) <= MAX_RATIO_DROP
                 for k in ("f0_sd_ratio", "f0_range_ratio"))
    return {"faster": faster, "p808_within": p808, "prosody_within": ratios, "ship": faster and p808 and ratios}


def table(results: dict) -> str:
    lines = ["| variant | size (kB) | RTF 1 thread | duration / front / decoder (ms) | P.808 | F0 SD ratio | "
             "F0 range ratio | loudness diff (LU) | PESQ-WB | STOI | faster | ship |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for name, r in results.items():
        q, s, v = r["quality"], r["speed"], r.get("verdict", {})
        ms = " / ".join(f"{1000 * s['seconds'][m]:.0f}" for m in MODULES)
        lines.append(f"| {name} | {r['bytes'] / 1000:.0f} | {s['rtf']:.4f} | {ms} | {q['dnsmos_p808']:.3f} | "
                     f"{q['f0_sd_ratio']:.3f} | {q['f0_range_ratio']:.3f} | {q['loudness_mean_lu']:.2f} | "
                     f"{q['pesq_wb']:.3f} | {q['stoi']:.3f} | {v.get('faster', '')} | {v.get('ship', '')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=12, help="held-out sentences measured (from the first)")
    parser.add_argument("--calibration", type=int, default=6, help="held-out sentences for static calibration "
                                                                   "(from the last; never measured)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (every variant once per round)")
    parser.add_argument("--student", type=Path, default=SHIPPED_STUDENT)
    args = parser.parse_args()
    heldout = read_heldout()
    if args.sentences + args.calibration > len(heldout):
        raise SystemExit(f"only {len(heldout)} held-out sentences")
    teacher = PiperTeacher.load(threads=1)
    work = Path(tempfile.mkdtemp(prefix="kdtts-int8-"))
    try:
        fp32_dir = export_onnx(args.student, work / "fp32")
        fp32 = OnnxStudent(fp32_dir, threads=1)
        feeds = calibration(fp32, teacher, sentences(teacher, heldout[-args.calibration:]))
        ids = sentences(teacher, heldout[:args.sentences])
        reference = reference_rows(teacher, ids)
        variants = {"fp32": fp32_dir}
        for mode in ("dynamic", "static"):
            for modules in [(m,) for m in MODULES] + [MODULES]:
                name = f"{mode} {'all' if len(modules) > 1 else modules[0]}"
                variants[name] = quantise(fp32_dir, work / name.replace(" ", "-"), mode, modules, feeds)
        students = {name: OnnxStudent(folder, threads=1) for name, folder in variants.items()}
        results: dict[str, dict] = {}
        for name, folder in variants.items():
            results[name] = {"bytes": sum((folder / f"{m}.onnx").stat().st_size for m in MODULES),
                             "quality": quality(students[name], teacher, ids, reference)}
            print(name, json.dumps(results[name]), file=sys.stderr)
        for name, timing in speeds(students, teacher, ids, args.rounds).items():
            results[name]["speed"] = timing
        floor = fp32_floor(results)
        for name in results:
            if name != "fp32":
                results[name]["verdict"] = verdict(results["fp32"], results[name], name, floor)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shipped = [name for name, r in results.items() if r.get("verdict", {}).get("ship")]
    meta = {"student": str(args.student), "sentences": args.sentences, "utterances": len(ids),
            "calibration_sentences": args.calibration, "load_average": os.getloadavg(),
            "rule": "ship only if faster end to end and each quantised module faster than its fp32 graph's best time "
                    f"in any variant (the noise floor), and P.808 within {MAX_P808_DROP} and prosody ratios within {MAX_RATIO_DROP}"}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "int8.json").write_text(json.dumps({"meta": meta, "variants": results, "shippable": shipped}, indent=1))
    markdown = table(results) + (f"\n\nShippable as `--precision int8`: {', '.join(shipped)}." if shipped else
                                 "\n\nNo int8 variant is both faster and within the quality margins: not shipped.")
    (OUT / "int8.md").write_text(f"# The student in int8\n\n`benchmarks/int8.py`, {len(ids)} held-out utterances "
                                 f"(calibration: {args.calibration} others), load average {meta['load_average'][0]:.1f}"
                                 f" at the end.\n\n{markdown}\n")
    print(markdown)


if __name__ == "__main__":
    main()
