"""The Compare tab: teacher and student on the same text, with everything a learner needs to see, and
mix-and-match of the three modules. Its API endpoints: /compare, /stream, /mix, /synthesize.

The page plays the student's audio while it is being made (a streaming player, fed chunk by chunk from
`Engine.stream`), then shows the teacher and the plots; /compare returns the same results whole, as WAVs."""
from __future__ import annotations

import html
import io
import os
import shutil
import threading
import uuid
from dataclasses import dataclass

import gradio as gr
import numpy as np
import soundfile as sf
from gradio import audio_stream_encoder

from kdtts.audio import write_wav
from kdtts.distill.corpus import read_heldout
from kdtts.engine import STAGES, Mix, Synthesis
from kdtts.student.header import shipped_tiers
from kdtts.text import MAX_CHARS, validate
from kdtts.ui import plots
from kdtts.ui.errors import friendly
from kdtts.ui.service import NO_STUDENT, Service
from kdtts.ui.teachers import switch_panels, teacher_selector
from kdtts.ui.temperature import RANGES
from kdtts.ui.temperature import scales as temperature_scales
from kdtts.ui.temperature import slider as temperature_slider
from kdtts.ui.vocoders import Vocoders
from kdtts.voice import Scales

SYNTH = "synth"  # synthesis events: Gradio does not limit them; Service.slot allows two teacher and two
SYNTH_LIMIT = None  # student syntheses at once, separately, so a queue of teacher requests never delays the student's
SIDES = ("teacher", "student")
EXAMPLES = 6  # held-out sentences shown as examples; the blind test never uses them (kdtts.ui.app)
INLINE_PHONEMES = "Phonemes in double brackets are read as given, as in Piper: Say [[ həlˈoʊ ]]."


@dataclass
class Comparison:
    teacher_wav: str
    student_wav: str | None
    mel_png: str
    durations_png: str
    timings_png: str
    table: str       # Markdown: RTF, speed-up, parameters, size
    timings: dict    # the numbers behind the table (JSON for API users)
    second_wav: str | None = None  # a second student's reading (e.g. the other tier), when one is chosen


def wav(service: Service, synthesis: Synthesis, stem: str) -> str:
    return str(write_wav(service.out_dir / f"{stem}-{uuid.uuid4().hex[:8]}.wav", synthesis.audio, synthesis.sample_rate))


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """One chunk as a WAV in memory: what a streaming gr.Audio takes (its encoder reads WAV without ffmpeg)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


PLAYER_CHUNK_S = 0.5
"""Seconds of audio per chunk sent to the streaming player: its encoder and the browser's HLS player take
segments a few AAC frames long badly (an empty first segment delays playback by seconds); the student
makes this much in a few tens of milliseconds."""
STREAMING = shutil.which("ffmpeg") is not None
"""Gradio's streaming player encodes its chunks with ffmpeg; without it the page shows the student's WAV
when it is whole (the student is fast enough that this is still first)."""
# The player's first segment must hold audio: if its encoder (an ffmpeg process) emits nothing within
# Gradio's 0.1 s start-up wait, the browser finds an empty playlist and asks again only a second later.
# A loaded machine starts ffmpeg slower than that; waiting longer for the first frames costs nothing else.
audio_stream_encoder.STARTUP_WAIT = max(audio_stream_encoder.STARTUP_WAIT, 0.6)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def spoken(synthesis: Synthesis, text: str) -> str:
    """What was read: the normalised words (numbers, money, dates spelled out) and Piper's phonemes."""
    phonemes = "".join(synthesis.phonemes)
    shown = phonemes if len(phonemes) <= 600 else phonemes[:600] + " …"
    return f"**Read as:** {html.escape(validate(text))}  \n**Phonemes:** /{html.escape(shown)}/"


NO_SECOND = "none"
"""The second-student choice that compares the teacher with one student only."""


def compare(service: Service, text: str, student_name: str | None, scales: Scales,
            student: Synthesis | None = None, second_name: str | None = None) -> Comparison:
    """Teacher and (when available) student on `text`, and a second student when `second_name` names one
    (both shipped tiers side by side); raises TextError for bad input.

    `student`: its own reading if already made (the page shows it first). The mel plot compares like
    with like: the teacher with the student reading at the teacher's durations (sample-aligned)."""
    engine = service.engine(student_name)
    if student is None and engine.student is not None:
        student = service.synthesize(engine, text, Mix.of("student"), scales)
    second_engine = service.engine(second_name, need_student=True) \
        if second_name not in (None, "", NO_SECOND, student_name) and engine.student is not None else None
    second = service.synthesize(second_engine, text, Mix.of("student"), scales) if second_engine else None
    teacher = service.synthesize(engine, text, Mix.of("teacher"), scales)
    aligned = service.synthesize(engine, text, Mix("teacher", "student", "student"), scales) if student else None
    hop, rate = service.teacher.hop_length, service.teacher.sample_rate
    labels, t_frames = plots.phoneme_durations(teacher.ids, teacher.durations, service.id_to_symbol)
    s_frames = plots.phoneme_durations(student.ids, student.durations, service.id_to_symbol)[1] if student else None
    numbers = {"teacher": {"seconds_audio": teacher.seconds, "rtf": teacher.rtf,
                           "timings": teacher.timings, "parameters": service.teacher.parameters,
                           "bytes": service.teacher.bytes_on_disk}}
    rows = [("teacher", teacher, service.teacher.parameters, service.teacher.bytes_on_disk)]
    for key, reading, voice, name in (("student", student, engine.student, student_name or service.default_name),
                                      ("second", second, second_engine and second_engine.student, second_name)):
        if reading is None:
            continue
        path = getattr(voice, "path", None)
        size = os.path.getsize(path) if path else 0
        params = voice.count_parameters()["total"]
        numbers[key] = {"name": name, "seconds_audio": reading.seconds, "rtf": reading.rtf, "timings": reading.timings,
                        "parameters": params, "bytes": size, "checkpoint": str(path) if path else None,
                        "speedup": teacher.compute_seconds / max(reading.compute_seconds, 1e-9)}
        rows.append((f"student: {name}" if second else "student", reading, params, size))
    if student is not None:
        numbers["speedup"] = numbers["student"]["speedup"]
    return Comparison(
        teacher_wav=wav(service, teacher, "teacher"),
        student_wav=wav(service, student, "student") if student else None,
        mel_png=plots.mels(teacher.audio, aligned.audio if aligned else None, rate, hop, service.out_dir,
                           "student, teacher's durations"),
        durations_png=plots.durations(labels, t_frames, s_frames, hop, rate, service.out_dir),
        timings_png=plots.timings(list(STAGES), teacher.timings, student.timings if student else None, service.out_dir),
        table=_table(rows, numbers), timings=numbers,
        second_wav=wav(service, second, "second") if second else None)


def _table(rows: list[tuple], numbers: dict) -> str:
    table = ["| model | " + " | ".join(f"{s} (ms)" for s in STAGES) + " | total (ms) | audio (s) | RTF | parameters | size |",
             "|---|" + "---:|" * (len(STAGES) + 5)]
    for name, syn, params, size in rows:
        table.append(f"| **{name}** | " + " | ".join(f"{1000 * syn.timings[s]:.0f}" for s in STAGES)
                     + f" | {1000 * syn.compute_seconds:.0f} | {syn.seconds:.2f} | {syn.rtf:.3f} | {params / 1e6:.2f} M | {_size(size)} |")
    if "speedup" in numbers:
        second = f"; {numbers['second']['name']}: **{numbers['second']['speedup']:.1f}×**" if "second" in numbers else ""
        table.append(f"\n**Speed-up (teacher time ÷ student time): {numbers['speedup']:.1f}×**{second}, this request, "
                     "this machine (single requests are noisy; see the benchmark table in *How it works*).")
    else:
        table.append("\n_No student checkpoint is loaded: teacher only._")
    return "\n".join(table)


LADDER = (("teacher", Mix("teacher", "teacher", "teacher")), ("+ student durations", Mix("student", "teacher", "teacher")),
          ("+ student front", Mix("student", "student", "teacher")), ("+ student decoder (the student)", Mix.of("student")))
"""Where quality is lost: the teacher, then one student module after another."""


def ladder(service: Service, text: str, student_name: str | None, scales: Scales) -> tuple[list[str], str]:
    """One WAV per rung of LADDER and a Markdown table with each rung's distance to the teacher."""
    from kdtts.align import mel_distance

    engine = service.engine(student_name, need_student=True)
    readings = [service.synthesize(engine, text, mix, scales) for _, mix in LADDER]
    teacher = readings[0].audio
    rows = ["| rung | audio length (s) | mel distance to the teacher |", "|---|---:|---:|"]
    for (name, _), reading in zip(LADDER, readings):
        rows.append(f"| {name} | {reading.seconds:.2f} | {mel_distance(teacher, reading.audio, service.teacher.spec):.3f} |")
    rows.append("\nMel distance: mean log-mel L1 per band after dynamic time warping (0 = the teacher's own audio). "
                "Each rung swaps one more teacher module for the student's; the jump between two rungs is that "
                "module's share of what a listener hears.")
    return [wav(service, r, f"ladder{i}") for i, r in enumerate(readings)], "\n".join(rows)


def synthesize(service: Service, text: str, model: str, student_name: str | None, scales: Scales) -> str:
    """One model ('teacher' or 'student') end to end; returns a WAV path."""
    if model not in ("teacher", "student"):
        raise ValueError(f"model must be 'teacher' or 'student', got {model!r}")
    engine = service.engine(student_name, need_student=model == "student")
    return wav(service, service.synthesize(engine, text, Mix.of(model), scales), model)


def mix(service: Service, text: str, duration: str, front: str, decoder: str, student_name: str | None,
        scales: Scales) -> tuple[str, str]:
    """Any teacher/student combination of the three modules; returns (WAV path, Markdown summary)."""
    for module, side in (("duration", duration), ("front", front), ("decoder", decoder)):
        if side not in ("teacher", "student"):
            raise ValueError(f"{module} must be 'teacher' or 'student', got {side!r}")
    choice = Mix(duration, front, decoder)
    engine = service.engine(student_name, need_student="student" in (duration, front, decoder))
    synthesis = service.synthesize(engine, text, choice, scales)
    summary = (f"**{choice.label()}** — {synthesis.seconds:.2f} s of audio in {1000 * synthesis.compute_seconds:.0f} ms "
               f"(RTF {synthesis.rtf:.3f}); " + ", ".join(f"{s} {1000 * synthesis.timings[s]:.0f} ms" for s in STAGES))
    return wav(service, synthesis, "mix"), summary


class CompareTab:
    def __init__(self, service: Service, first_text: str) -> None:
        self.service, self.first_text = service, first_text
        self.student: gr.Dropdown | None = None  # the checkpoint dropdown, refreshed when fine-tunes finish
        self.second: gr.Dropdown | None = None   # an optional second student, heard beside the first
        self._example: tuple | None = None
        self._example_lock = threading.Lock()
        self.vocoders = Vocoders(service)

    def example(self) -> tuple:
        """The first held-out sentence, compared once and shown on every page load (files re-made if cleaned)."""
        with self._example_lock:
            files = [x for x in (self._example or ())[:5] if isinstance(x, str)]
            if self._example is None or not all(os.path.exists(f) for f in files):
                *_, self._example = self.do_compare(self.first_text)
            return self._example

    def scales(self, temperature: float, length: float) -> Scales:
        return temperature_scales(self.service.teacher, temperature, length)

    def do_compare(self, text, student=None, temperature=0.0, length=1.0, second=NO_SECOND):
        """The student's audio first (it is ready in a fraction of a second), then the teacher, the second
        student (when one is chosen) and the plots."""
        scales = self.scales(temperature, length)
        engine = self.service.engine(student)
        own = None
        if engine.student is not None:
            own = self.service.synthesize(engine, text, Mix.of("student"), scales)
            yield (None, wav(self.service, own, "student"), None, None, None, "_The teacher is reading…_", None,
                   spoken(own, text), None)
        else:
            gr.Warning(NO_STUDENT)
        result = compare(self.service, text, student, scales, own, second)
        yield (result.teacher_wav, result.student_wav, result.mel_png, result.durations_png, result.timings_png,
               result.table, result.timings, spoken(own, text) if own else "", result.second_wav)

    def do_compare_live(self, text, student=None, temperature=0.0, length=1.0, second=NO_SECOND):
        """The page's Compare: the student's audio into the streaming player as it is made, then (as
        `do_compare`) its WAV, the teacher and the plots. Outputs: the player, then `do_compare`'s."""
        skip = gr.skip()
        engine = self.service.engine(student)
        if not STREAMING or engine.student is None:
            yield from ((skip, *out) for out in self.do_compare(text, student, temperature, length, second))
            return
        scales, rate = self.scales(temperature, length), self.service.teacher.sample_rate
        chunks, pending = [], []
        for chunk in self.service.stream(engine, text, Mix.of("student"), scales):
            chunks.append(chunk)
            pending.append(chunk.audio)
            if sum(map(len, pending)) >= PLAYER_CHUNK_S * rate:
                yield (wav_bytes(np.concatenate(pending), rate), *(skip,) * len(self.outputs))
                pending = []
        own = Synthesis.of(chunks, rate)
        if pending:
            yield (wav_bytes(np.concatenate(pending), rate), *(skip,) * len(self.outputs))
        yield (skip, None, wav(self.service, own, "student"), None, None, None, "_The teacher is reading…_", None,
               spoken(own, text), None)
        result = compare(self.service, text, student, scales, own, second)
        yield (skip, result.teacher_wav, result.student_wav, result.mel_png, result.durations_png,
               result.timings_png, result.table, result.timings, spoken(own, text), result.second_wav)

    def do_stream(self, text, model="student", student=None, temperature=0.0, length=1.0):
        """/stream: one model's audio as it is made, each chunk a WAV file (consecutive samples)."""
        if model not in SIDES:
            raise ValueError(f"model must be 'teacher' or 'student', got {model!r}")
        engine = self.service.engine(student, need_student=model == "student")
        stem = f"stream-{uuid.uuid4().hex[:8]}"
        chunks = self.service.stream(engine, text, Mix.of(model), self.scales(temperature, length))
        for k, chunk in enumerate(chunks):
            yield str(write_wav(self.service.out_dir / f"{stem}-{k:04d}.wav", chunk.audio, engine.sample_rate))

    def do_synthesize(self, text, model="student", student=None, temperature=0.0, length=1.0):
        return synthesize(self.service, text, model, student, self.scales(temperature, length))

    def do_mix(self, text, duration="student", front="student", decoder="teacher", student=None,
               temperature=0.0, length=1.0):
        return mix(self.service, text, duration, front, decoder, student, self.scales(temperature, length))

    def build(self, choices: list[str]) -> None:
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(label=f"Text (up to {MAX_CHARS} characters)", lines=2, value=self.first_text,
                                  elem_id="text", info=INLINE_PHONEMES)
                go = gr.Button("Synthesise teacher and student", variant="primary", elem_id="compare-btn")
                gr.Examples([[p] for p in read_heldout()[:EXAMPLES]], inputs=[text], label="Examples (held-out sentences)")
            with gr.Column(scale=2):
                teacher, _ = teacher_selector("compare")
                with gr.Group() as tts_settings:  # hidden while a vocoder teacher is chosen
                    self.student = gr.Dropdown(choices, value=choices[0] if choices else None,
                                               label="Student checkpoint", allow_custom_value=True,
                                               elem_id="compare-student")  # fine-tunes appear after start-up
                    tiers = [c for c in choices[1:] if c in shipped_tiers()]  # the other tier, when shipped
                    self.second = gr.Dropdown([NO_SECOND, *choices], value=tiers[0] if tiers else NO_SECOND,
                                              label="Second student, side by side (e.g. the other tier)",
                                              allow_custom_value=True, elem_id="compare-second")
                    scale_inputs = self._scales()
        vocoder_panel = self.vocoders.build(text, teacher)
        with gr.Column() as tts_panel:
            outputs = self._outputs()
            self._build_ladder(text, scale_inputs)
            self._build_mix(text, scale_inputs)
        switch_panels(teacher, {"tts": [go, tts_settings, tts_panel], "vocoder": [vocoder_panel]})
        self.outputs = outputs
        inputs, live = [text, self.student, *scale_inputs, self.second], [self.live, *outputs]
        for event in (go.click, text.submit):
            # old results go first, so an error never sits on top of another text's audio
            event(None, None, live, js=f"() => Array({len(live)}).fill(null)").then(  # in the page: no round trip
                friendly(self.do_compare_live), inputs, live, api_visibility="private",
                concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)
        # the API: the same results whole, as WAV files; /stream: one model's chunks as they are made
        gr.Button(visible=False).click(friendly(self.do_compare), inputs, outputs, api_name="compare",
                                       concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)
        model = gr.Radio(SIDES, value="student", visible=False, label="model")
        chunk = gr.File(visible=False, label="audio chunk (WAV)")
        gr.Button(visible=False).click(friendly(self.do_stream), [text, model, *inputs[1:-1]], chunk, api_name="stream",
                                       concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)

    @staticmethod
    def _scales() -> list:
        with gr.Accordion("Teacher temperature and speaking rate", open=False):
            temperature = temperature_slider("compare-temperature")
            length = gr.Slider(*RANGES["length scale"], 1.0, step=0.05, label="length scale (both models)")
        return [temperature, length]

    def _outputs(self) -> list:
        with gr.Row():  # the student first: it is ready first, and plays while it is being made
            self.live = gr.Audio(label="Student, as it is made", streaming=True, autoplay=True, interactive=False,
                                 elem_id="student-live", visible=STREAMING)
            student_audio = gr.Audio(label="Student", type="filepath", interactive=False, elem_id="student-audio")
            teacher_audio = gr.Audio(label="Teacher", type="filepath", interactive=False, elem_id="teacher-audio")
            second_audio = gr.Audio(label="Second student", type="filepath", interactive=False, elem_id="second-audio")
        said = gr.Markdown(label="read as", elem_id="spoken")
        table = gr.Markdown(elem_id="timing-table", label="timings table")
        mel = gr.Image(label="Mel spectrograms", show_label=False, type="filepath", interactive=False, elem_id="mel-plot")
        durations = gr.Image(label="Per-phoneme durations", show_label=False, type="filepath", interactive=False,
                             elem_id="dur-plot")
        timings = gr.Image(label="Time per module", show_label=False, type="filepath", interactive=False,
                           elem_id="time-plot", height=260)
        numbers = gr.JSON(label="Timings (JSON)", visible=False)
        return [teacher_audio, student_audio, mel, durations, timings, table, numbers, said, second_audio]

    def do_ladder(self, text, student=None, temperature=0.0, length=1.0):
        wavs, table = ladder(self.service, text, student, self.scales(temperature, length))
        return (*wavs, table)

    def _build_ladder(self, text: gr.Textbox, scale_inputs: list) -> None:
        with gr.Accordion("Where is quality lost? Swap in one student module at a time", open=False):
            go = gr.Button("Climb the ladder")
            with gr.Row():
                rungs = [gr.Audio(label=name, type="filepath", interactive=False) for name, _ in LADDER]
            table = gr.Markdown(label="ladder distances")
        go.click(friendly(self.do_ladder), [text, self.student, *scale_inputs], [*rungs, table], api_name="ladder",
                 concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)

    def _build_mix(self, text: gr.Textbox, scale_inputs: list) -> None:
        gr.Markdown("### Mix and match: choose who runs each module, and hear where quality is lost")
        with gr.Row():
            mix_d = gr.Radio(SIDES, value="student", label="duration")
            mix_l = gr.Radio(SIDES, value="student", label="front (ids + durations -> latent z)")
            mix_dec = gr.Radio(SIDES, value="teacher", label="decoder")
            mix_btn = gr.Button("Hear the mix")
        with gr.Row():
            mix_audio = gr.Audio(label="Mix", type="filepath", interactive=False)
            mix_info = gr.Markdown(label="mix summary")
        mix_btn.click(friendly(self.do_mix), [text, mix_d, mix_l, mix_dec, self.student, *scale_inputs],
                      [mix_audio, mix_info], api_name="mix", concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)
        model = gr.Radio(SIDES, value="student", visible=False)  # API only: one model end to end
        one = gr.Audio(type="filepath", visible=False, label="audio")
        gr.Button(visible=False).click(friendly(self.do_synthesize), [text, model, self.student, *scale_inputs], one,
                                       api_name="synthesize", concurrency_id=SYNTH, concurrency_limit=SYNTH_LIMIT)
