"""Streaming synthesis: the streamed audio is the offline audio, and the first chunk comes early."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdtts.engine import Engine, Mix, Synthesis
from kdtts.streaming import Windows, conv_reach, decode_windows, receptive_field, window_bounds
from kdtts.student.checkpoint import load_student
from kdtts.student.modules import DecoderStudent, StudentConfig
from kdtts.student.onnx_student import load_fast
from kdtts.text import split_sentences, validate

LONG = ("When the evening train finally pulled into the small station, the passengers, tired after a long "
        "day of travel through the mountains and the valleys, stepped out onto the cold platform and looked "
        "around for someone who might be waiting for them.")
TEXT = "The weather is lovely today. " + LONG + " Then it rained."
SMALL = Windows(first=3, longest=20)  # many seams, of several sizes


@pytest.fixture(scope="module")
def students(random_student_path, tmp_path_factory):
    """The torch student and the same checkpoint on onnxruntime (the app's and the CLI's)."""
    import os

    os.environ.setdefault("KDTTS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    from kdtts.student.checkpoint import SHIPPED_STUDENT

    path = SHIPPED_STUDENT if SHIPPED_STUDENT.exists() else random_student_path
    return {"torch": load_student(path), "onnx": load_fast(path, threads=1)}


@pytest.mark.parametrize("config, reach", [(StudentConfig(), 1 + 6 * 3), (StudentConfig(decoder_layers=4), 1 + 4 * 3),
                                           (StudentConfig(decoder_repeats=2), 1 + 2 * 6 * 3)])
def test_the_receptive_field_is_the_convolutions_plus_the_istft_overlap(config, reach):
    assert receptive_field(config) == reach + 2  # n_fft 1024 at hop 256: a sample sees frames +- 2


def test_the_receptive_field_is_tight_on_a_decoder_with_strong_blocks():
    """One frame of z changed: exactly the spectrum frames within the conv reach change, and no sample
    beyond the receptive field does."""
    torch.manual_seed(0)
    cfg = StudentConfig(decoder_layers=3, decoder_channels=32)
    decoder = DecoderStudent(cfg).eval()
    with torch.no_grad():
        for block in decoder.blocks:
            block.gamma.fill_(1.0)
        z = torch.randn(1, cfg.z_channels, 80)
        moved = z.clone()
        moved[:, :, 40] += 1.0
        changed = (decoder.spectrum(moved)[0] - decoder.spectrum(z)[0]).abs().amax(dim=(0, 1)) > 0
        audio = (decoder(moved) - decoder(z)).abs()[0] > 0
    reach = conv_reach(decoder)
    assert changed.nonzero().flatten().tolist() == list(range(40 - reach, 40 + reach + 1))
    samples = audio.nonzero().flatten()
    field = receptive_field(cfg)
    assert samples.min() >= (40 - field) * cfg.hop_length and samples.max() < (41 + field) * cfg.hop_length


def test_windows_cover_every_frame_once_and_grow():
    bounds = window_bounds(100, Windows(first=4, longest=32))
    assert bounds[0] == (0, 4) and bounds[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert [e - s for s, e in bounds[:5]] == [4, 8, 16, 32, 32]


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_windowed_decoding_equals_the_whole_decode(students, runtime):
    student = students[runtime]
    z = np.random.default_rng(0).standard_normal((student.config.z_channels, 157)).astype(np.float32)
    whole = student.decode(z)
    context = receptive_field(student.config)
    streamed = np.concatenate(list(decode_windows(student, z, context, SMALL)))
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() <= 1e-4
    # the test can fail: without the overlap every seam is a discontinuity
    assert np.abs(np.concatenate(list(decode_windows(student, z, 0, SMALL))) - whole).max() > 1e-3


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_the_stream_equals_the_offline_synthesis(teacher, det_scales, students, runtime):
    engine = Engine(teacher, students[runtime])
    offline = engine.synthesize(TEXT, Mix.of("student"), det_scales)
    chunks = list(engine.stream(TEXT, Mix.of("student"), det_scales, windows=SMALL))
    assert [c.sentence for c in chunks if c.spoken] == list(range(offline.sentences)) and offline.sentences >= 3
    assert len(chunks) > 10  # the long sentence came in windows
    streamed = np.concatenate([c.audio for c in chunks])
    assert streamed.shape == offline.audio.shape and np.abs(streamed - offline.audio).max() <= 1e-4
    whole = Synthesis.of(chunks, engine.sample_rate)
    assert (whole.durations == offline.durations).all() and whole.phonemes == offline.phonemes
    assert np.abs(whole.z - offline.z).max() <= 1e-5 and whole.sentences == offline.sentences


def test_the_teacher_streams_sentence_by_sentence(teacher, det_scales, students):
    engine = Engine(teacher, students["onnx"])
    offline = engine.synthesize(TEXT, Mix.of("teacher"), det_scales)
    chunks = list(engine.stream(TEXT, Mix.of("teacher"), det_scales))
    assert len(chunks) == offline.sentences and all(c.spoken is not None for c in chunks)
    assert np.abs(np.concatenate([c.audio for c in chunks]) - offline.audio).max() <= 1e-4


def test_the_first_chunk_waits_for_one_window_of_the_first_sentence_only(teacher, det_scales, students, monkeypatch):
    engine = Engine(teacher, students["onnx"])
    phonemised = []
    voice = teacher.phonemizer._voice
    original = voice.phonemize
    monkeypatch.setattr(voice, "phonemize", lambda text: phonemised.append(text) or original(text))
    text = LONG + " " + TEXT
    stream = engine.stream(text, Mix.of("student"), det_scales, windows=Windows(first=8, longest=64))
    first = next(stream)
    assert len(first.audio) == 8 * teacher.hop_length and first.spoken is None
    assert len(phonemised) == 1  # the later sentences are not phonemised yet
    assert sum(len(c.audio) for c in stream) > 0 and len(phonemised) == len(split_sentences(validate(text)))


def test_bad_text_fails_before_any_audio(teacher, students):
    from kdtts.text import TextError

    with pytest.raises(TextError, match="empty"):
        next(Engine(teacher, students["onnx"]).stream("   ", Mix.of("student")))
