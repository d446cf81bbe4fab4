"""The vocoder family's Compare panel: vocoder KD (the same mel through the vocoder teacher and the student
vocoder). Its API endpoint: /vocode."""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING

import gradio as gr

from kdtts.audio import write_wav
from kdtts.evaluate import intrusive
from kdtts.families import FAMILIES, family_of
from kdtts.student.header import CheckpointError
from kdtts.teachers.registry import TEACHERS
from kdtts.text import validate
from kdtts.ui import plots
from kdtts.ui.errors import friendly
from kdtts.ui.service import Service
from kdtts.ui.teachers import chosen

if TYPE_CHECKING:  # torch is imported when a vocoder is first used, not when the app starts
    from kdtts.student.vocoder import VocoderStudent
    from kdtts.vocoding import VocoderPair

MAX_LOADED_VOCODERS = 4  # student vocoders held in memory at once (the least recently used goes first)
VOCODER_CHARS = 400  # HiFi-GAN is slow and its activations grow with the audio: a few sentences at a time


class Vocoders:
    """Vocoder teachers (loaded on first use, one HiFi-GAN run at a time) and the student vocoder."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._pairs: dict[str, VocoderPair] = {}
        self._students: OrderedDict[tuple[str, float], VocoderStudent] = OrderedDict()
        self._lock, self._slot = threading.Lock(), threading.BoundedSemaphore(1)
        self.student: gr.Dropdown | None = None  # the student-vocoder dropdown, refreshed when fine-tunes finish

    def pair(self, name: str, student: str | None = None) -> VocoderPair:
        """The teacher `name` (loaded once) with the named student vocoder (the shipped one by default)."""
        paths = self.service.vocoder_checkpoints()
        if student and student not in paths:
            raise CheckpointError(f"Unknown student vocoder {student!r}; choose one of {sorted(paths)}.")
        path = paths.get(student) if student else next(iter(paths.values()), None)
        with self._lock:
            if name not in self._pairs:
                from kdtts.engine import Engine
                from kdtts.vocoding import VocoderPair

                self._pairs[name] = VocoderPair.load(name, mel_engine=Engine(self.service.teacher))
            if path is None:
                return self._pairs[name]
            key = (str(path), path.stat().st_mtime)
            if key not in self._students:
                from kdtts.student.checkpoint import load_vocoder

                self._students[key] = load_vocoder(path)
            self._students.move_to_end(key)
            while len(self._students) > MAX_LOADED_VOCODERS:
                self._students.popitem(last=False)
            return self._pairs[name].with_student(self._students[key])

    def do_vocode(self, text: str, teacher: str = "hifigan", student: str | None = None):
        """Student vocoder first (it is ready at once), then the teacher, the mels and the table."""
        name = chosen(teacher)
        if family_of(name) is not FAMILIES["vocoder"]:
            raise gr.Error(f"{TEACHERS[name].title} is not a vocoder teacher; choose HiFi-GAN V1.")
        if len(validate(text)) > VOCODER_CHARS:
            raise gr.Error(f"The vocoder comparison reads up to {VOCODER_CHARS} characters (HiFi-GAN is slow); "
                           "shorten the text.", print_exception=False)
        pair = self.pair(name, student)
        if pair.student is None:
            raise gr.Error("No student vocoder is shipped (assets/vocoder.safetensors); train one with "
                           "`python -m kdtts distill --teacher hifigan`, or in the Distill tab.", print_exception=False)
        mel = pair.mel(text)
        student = pair.vocode(mel, "student")
        yield self._wav(student, "student-vocoder"), None, None, "_HiFi-GAN is vocoding the same mel…_", None
        with self._slot:
            teacher_out = pair.vocode(mel, "teacher")
        numbers = {"teacher_rtf": teacher_out.rtf, "student_rtf": student.rtf,
                   "speedup": teacher_out.timings["vocoder"] / max(student.timings["vocoder"], 1e-9),
                   "pesq_wb": intrusive.pesq_wb(teacher_out.audio, student.audio, pair.sample_rate),
                   "stoi": intrusive.stoi(teacher_out.audio, student.audio, pair.sample_rate),
                   "teacher_parameters": pair.teacher_parameters,
                   "student_parameters": pair.student.count_parameters()["total"]}
        mels = plots.mels(teacher_out.audio, student.audio, pair.sample_rate, pair.student.hop_length,
                          self.service.out_dir, "student vocoder")
        yield (self._wav(student, "student-vocoder"), self._wav(teacher_out, "teacher-vocoder"), mels,
               _table(numbers), numbers)

    def _wav(self, vocoded, stem: str) -> str:
        return str(write_wav(self.service.out_dir / f"{stem}-{uuid.uuid4().hex[:8]}.wav", vocoded.audio,
                             vocoded.sample_rate))

    def build(self, text: gr.Textbox, teacher: gr.Radio) -> gr.Column:
        """The vocoder panel (hidden until a vocoder teacher is chosen)."""
        with gr.Column(visible=False) as panel:
            gr.Markdown("### Vocoder distillation: the same mel, two vocoders\nThe mel is the Piper teacher's "
                        "reading of your text. HiFi-GAN V1 (the teacher) and the student vocoder both turn it back "
                        "into sound, so the two clips are sample-aligned and compared frame by frame.")
            vocoders = list(self.service.vocoder_checkpoints())
            self.student = gr.Dropdown(vocoders, value=vocoders[0] if vocoders else None, label="Student vocoder",
                                       allow_custom_value=True, elem_id="compare-vocoder")
            go = gr.Button("Vocode with teacher and student", variant="primary", elem_id="vocode-btn")
            with gr.Row():
                student_audio = gr.Audio(label="Student vocoder", type="filepath", interactive=False,
                                         elem_id="student-vocoder-audio")
                teacher_audio = gr.Audio(label="HiFi-GAN V1 (teacher)", type="filepath", interactive=False,
                                         elem_id="teacher-vocoder-audio")
            table = gr.Markdown(elem_id="vocoder-table", label="vocoder table")
            mels = gr.Image(label="Mel spectrograms", show_label=False, type="filepath", interactive=False,
                            elem_id="vocoder-mel-plot")
            numbers = gr.JSON(label="numbers", visible=False)
        go.click(friendly(self.do_vocode), [text, teacher, self.student],
                 [student_audio, teacher_audio, mels, table, numbers], api_name="vocode",
                 concurrency_id="vocode", concurrency_limit=2)
        return panel


def _table(n: dict) -> str:
    return "\n".join([
        "| vocoder | parameters | RTF (this request) |", "|---|---:|---:|",
        f"| **HiFi-GAN V1** (teacher) | {n['teacher_parameters'] / 1e6:.1f} M | {n['teacher_rtf']:.3f} |",
        f"| **student vocoder** | {n['student_parameters'] / 1e6:.2f} M | {n['student_rtf']:.4f} |", "",
        f"**Speed-up: {n['speedup']:.0f}×.** Fidelity of the student to the teacher on this mel: "
        f"PESQ-WB **{n['pesq_wb']:.2f}** (1-4.6), STOI **{n['stoi']:.3f}** (0-1)."])

