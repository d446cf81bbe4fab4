"""How-it-works tab: knowledge distillation in plain words, the loss, the diagram, the benchmark table.

Its numbers are the shipped models' evaluation, shipped beside them (`assets/evaluation.json`,
kdtts.evaluate.headline), never read from benchmarks/ at run time."""
from __future__ import annotations

from kdtts.evaluate.headline import base_on_small_run, quality_speed_points, read_headline


def headline() -> str:
    """The point in one line, from the shipped student's evaluation (empty if there is none)."""
    try:
        report = read_headline()["student"]
        t, s = report["models"]["teacher"], report["models"]["student"]
        speedup = report["speedup_student_over_teacher"]
        return (f"**{s['parameters'] / 1e6:.2f} M parameters** against the teacher's {t['parameters'] / 1e6:.1f} M, "
                f"**{speedup['1thread']:.0f}× faster** on one CPU thread, DNSMOS P.808 **{s['dnsmos_p808']:.2f}** "
                f"(teacher {t['dnsmos_p808']:.2f}), word error rate {s['wer']:.2f} (teacher {t['wer']:.2f}); "
                f"measured on {report['meta']['sentences']} held-out sentences (`python -m kdtts evaluate`). "
                "The example below was rendered at start-up: press play.")
    except (OSError, KeyError, TypeError, ValueError):
        return ""


INTRO = r"""
## Knowledge distillation, in plain words

A **teacher** is a large model that already speaks well: here the Piper voice *en_US-joe-medium*
(a VITS model, 15.7 M parameters). A **student** is a much smaller model that learns to *imitate the
teacher* rather than learning from recordings alone. The teacher can read any amount of text, so the
student gets unlimited, perfectly consistent examples: the exact durations, hidden representations
and audio the teacher would produce.

The student is trained with the loss

$$L = (1 - \alpha)\cdot L\big(y,\ S(x)\big) \;+\; \alpha\cdot L\big(T(x),\ S(x)\big)$$

* $x$ is the input text (phoneme ids), $S(x)$ the student's output and $T(x)$ the teacher's;
* $y$ is a real recording when one exists; the first term learns from it;
* $\alpha$ balances the two. With **only the teacher**, $\alpha = 1$ and the loss is pure imitation;
  record a few sentences (or upload a dataset) in the Distill tab and $\alpha$ becomes yours to set;
* **temperature** here is the teacher's sampling noise (the VITS noise scales, multiplied by it): at 0 the
  teacher gives its *mean* (deterministic, smooth targets), at 1 its own sampled voice (more varied targets).
  It is an analogy to Hinton's softmax temperature, which softens a classifier's probabilities: a TTS
  teacher has no logits to soften, so there is no $T^2$ factor either. Compare and Distill share one
  temperature slider: on Compare it is how the teacher reads, on Distill what the student learns from.

### Module by module

The student copies the teacher's *structure*: each module has the same inputs and outputs as the
teacher's, so each one can be distilled, measured and swapped on its own (try the mix-and-match in the
Compare tab to hear where quality is lost).

| module | input → output | distilled from | loss |
|---|---|---|---|
| duration | phoneme ids → frames per phoneme | the teacher's durations | MSE of log-durations + the total length |
| front | ids + durations → latent *z* (192 × frames) | the teacher's *z* | L1 on *z*, padding masked |
| decoder | *z* → waveform | the teacher's decoder audio for the same *z* | multi-resolution STFT + log-mel L1, then a GAN stage |

**Teacher forcing** is why the modules can be trained (and swapped) one by one: in training, the student's
front is fed the *teacher's* durations and the student's decoder the *teacher's* *z*, so each module learns its
own job on perfect inputs. At inference each module gets the student's own outputs instead; the mix-and-match
and the "where is quality lost" ladder in Compare let you hear what that costs, module by module.

### What α does here

A recording cannot be turned into the teacher's latent *z* (a Piper voice has no encoder for audio), but the
teacher's front accepts any durations. So kdtts has the teacher read the recording's text, aligns the two
readings (dynamic time warping on their mel spectrograms), and reads off the recording's own duration for each
phoneme. With those durations, the teacher's *z* and audio, the student's, and the recording all line up frame by
frame, and each module's loss mixes two targets by $\alpha$, where a target exists:

| module | teacher target $T(x)$ (weight $\alpha$) | ground truth $y$ (weight $1 - \alpha$) |
|---|---|---|
| duration | the teacher's own durations | the recording's durations (aligned) |
| front | the teacher's *z* for the recording's durations | – (no *z* exists for a recording) |
| decoder | the teacher's audio for that *z* | the recording itself |

At $\alpha = 0$ the student learns your timing and your voice's sound; at $\alpha = 1$ it ignores them; in
between, it learns from both.

The decoder is where the speed comes from: the teacher's decoder runs at the audio sample rate
(22,050 steps a second), the student's at the frame rate (86 a second) and turns spectra into sound
with an inverse FFT.

```mermaid
flowchart LR
  X[text] --> P[phoneme ids]
  P --> TD[teacher duration] --> TL[teacher latent z] --> TDEC[teacher decoder] --> TY[teacher audio]
  P --> SD[student duration] --> SL[student latent z] --> SDEC[student decoder] --> SY[student audio]
  TD -. KD loss .-> SD
  TL -. KD loss .-> SL
  TY -. KD loss .-> SY
```
"""


def benchmark_table() -> str:
    """A short results table from the shipped student's evaluation (the full report: benchmarks/RESULTS.md)."""
    report = read_headline().get("student")
    if not report:
        return "## Measured results\n\n_No evaluation yet: run `python -m kdtts evaluate`._"
    m, speedup = dict(report["models"]), report.get("speedup_student_over_teacher", {})
    base = read_headline().get("base", {})
    if "student" in base.get("models", {}):  # its own run; its RTF put on this run's by its speed-up
        m["base"] = base_on_small_run(read_headline())
    systems = ("teacher", "student", "base", "griffinlim") if "base" in m else ("teacher", "student", "griffinlim")
    rows = [("parameters", "parameters", "{:,.0f}"), ("DNSMOS P.808 (predicted MOS, 1-5)", "dnsmos_p808", "{:.2f}"),
            ("DNSMOS overall", "dnsmos_ovrl", "{:.2f}"), ("word error rate (pocketsphinx)", "wer", "{:.3f}"),
            ("real-time factor, 1 thread", "rtf_1thread", "{:.4f}"),
            ("F0 spread against the teacher's (SD ratio)", "f0_sd_ratio", "{:.2f}"),
            ("loudness against the teacher's (LU, mean)", "loudness_diff_lu", "{:+.1f}")]
    lines = ["## Measured results", "",
             f"{report['meta']['sentences']} held-out sentences, teacher deterministic, same run, one machine "
             f"(`python -m kdtts evaluate`; full table in `benchmarks/RESULTS.md`).", "",
             "| | teacher | " + ("student, small tier | student, base tier" if "base" in m else "student")
             + " | Griffin-Lim (no neural vocoder) |", "|---|" + "---:|" * len(systems)]
    for label, key, fmt in rows:
        cells = [fmt.format(m[s][key]) if m.get(s, {}).get(key) is not None else "–" for s in systems]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if "1thread" in speedup:
        lines.append(f"\nThe student is **{speedup['1thread']:.1f}× faster** than the teacher on one CPU thread"
                     + (f"; the base tier {base['speedup_student_over_teacher']['1thread']:.1f}× (its own run, whose "
                        "speed-up places its real-time factor above)."
                        if "1thread" in base.get("speedup_student_over_teacher", {}) else "."))
    lines.append("\nDNSMOS is a neural network trained to predict what listeners would rate a clip (1-5), without a "
                 "reference. It is a proxy: the blind test in the **Listen** tab measures the real thing, with people, "
                 "and its leaderboard and MOS table are the numbers to trust when enough votes are in.")
    return "\n".join(lines)


def vocoder_table() -> str:
    """The second teacher family in one table: HiFi-GAN V1 and the student vocoder on the same mels."""
    s = read_headline().get("vocoder", {}).get("summary")
    if not s:
        return ""
    return "\n".join([
        "## The second teacher family: a vocoder", "",
        "An acoustic model + a vocoder is the other classic TTS design. Here the vocoder teacher is HiFi-GAN V1, and "
        "the student vocoder learns its mel → audio map on the mels of the Piper teacher's audio (choose "
        "*HiFi-GAN V1* on Compare to hear both). Both read the same mel, so their clips are sample-aligned, and "
        "PESQ/STOI compare them directly (`python -m kdtts evaluate --teacher hifigan`).", "",
        "| | HiFi-GAN V1 | student vocoder |", "|---|---:|---:|",
        f"| parameters | {s['teacher_parameters'] / 1e6:.2f} M | {s['parameters'] / 1e6:.2f} M |",
        f"| real-time factor, 1 thread | {s['teacher_rtf_1thread']:.3f} | {s['student_rtf_1thread']:.4f} |",
        f"| DNSMOS P.808 / overall | {s['teacher_p808']:.2f} / {s['teacher_ovrl']:.2f} | "
        f"{s['student_p808']:.2f} / {s['student_ovrl']:.2f} |",
        f"| PESQ-WB / STOI against HiFi-GAN's output | – | {s['pesq_wb']:.2f} / {s['stoi']:.3f} |"])


def build(service) -> None:
    """The tab: the text, the module diagram and the measured results."""
    import gradio as gr

    from kdtts.ui import plots

    gr.Markdown(INTRO, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                         {"left": "$", "right": "$", "display": False}])
    gr.Image(plots.diagram(service.out_dir), label="Module-wise distillation", show_label=False, interactive=False,
             buttons=[])
    gr.Markdown(benchmark_table())
    chart = plots.quality_speed(quality_speed_points(read_headline()), service.out_dir)
    if chart:
        gr.Image(chart, label="Quality against speed (the shipped evaluation)", interactive=False, buttons=[])
    gr.Markdown(vocoder_table())
