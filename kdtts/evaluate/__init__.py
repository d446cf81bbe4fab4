"""Evaluation suite: every number kdtts quotes about a student is measured here.

One small module per metric family, each function documented with its definition and units:

- `fidelity`   MCD (dB) and F0 RMSE (Hz) against the teacher's audio
- `intrusive`  PESQ wide-band and STOI against the teacher's audio (equal-length pairs)
- `dnsmos`     DNSMOS OVRL / SIG / BAK / P.808 (no reference needed)
- `asr`        WER / CER from the offline pocketsphinx recogniser
- `speed`      real-time factors per module and end to end, parameters, bytes, peak RSS
- `griffinlim` the "no neural vocoder" baseline: teacher mel -> Griffin-Lim
- `report`     runs it all and writes report.json, report.md and plots; `cli` registers
               `python -m kdtts evaluate`.
"""
from kdtts.evaluate.optional import MissingEvaluator

__all__ = ["MissingEvaluator"]
