"""Evaluation suite: every number kdtts quotes about a student is measured here.

One small module per metric family, each function documented with its definition and units:

- `fidelity`   MCD (dB) and F0 RMSE (Hz) against the teacher's audio
- `intrusive`  PESQ wide-band and STOI against the teacher's audio (equal-length pairs)
- `prosody`    F0 SD and 5-95 % range in semitones (how much the pitch moves)
- `loudness`   BS.1770 integrated loudness (LUFS)
- `dnsmos`     DNSMOS OVRL / SIG / BAK / P.808 (no reference needed)
- `asr`        WER / CER from the offline pocketsphinx recogniser
- `speed`      real-time factors per module and end to end, parameters, bytes, peak RSS
- `griffinlim` the "no neural vocoder" baseline: teacher mel -> Griffin-Lim
- `stats`      paired bootstrap 95 % intervals over sentences (scipy.stats.bootstrap)
- `versus`     every system against the teacher, sentence by sentence, with those intervals
- `goals`      the goals of each student tier (small, base)
- `panel`      the decision rule between a candidate and the incumbent student
- `report`     runs it all and writes report.json, report.md and plots; `cli` registers
               `python -m kdtts evaluate`.
"""
from kdtts.evaluate.optional import MissingEvaluator

__all__ = ["MissingEvaluator"]
