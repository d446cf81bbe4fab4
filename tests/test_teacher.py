"""The Piper teacher: it speaks, it is repeatable, and its modules reproduce the whole graph."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from kdtts.teachers import PiperTeacher, piper_graph
from kdtts.teachers.piper import default_voice
from kdtts.teachers.piper_graph import TeacherGraphError, find_cut
from kdtts.voice import Scales, speak

TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def ids(teacher):
    return np.array(teacher.phonemizer.ids(TEXT))


@pytest.fixture(scope="module")
def det_out(teacher, ids, det_scales):
    return teacher.full(ids, det_scales)


def test_teacher_speaks(teacher, ids, det_out):
    out = det_out
    frames = int(out.durations.sum())
    assert teacher.sample_rate == 22050 and teacher.hop_length == 256
    assert out.durations.shape == ids.shape and (out.durations >= 0).all()
    assert out.z.shape == (192, frames)
    assert out.audio.shape == (frames * 256,)
    assert out.audio.dtype == np.float32
    assert 1.0 < len(out.audio) / teacher.sample_rate < 6.0  # a sentence, not silence or runaway
    assert 0.05 < np.abs(out.audio).max() <= 1.5 and np.sqrt(np.mean(out.audio ** 2)) > 0.01


def test_module_wise_run_has_the_same_shapes_and_timings(teacher, ids, det_scales, det_out):
    out = speak(ids, det_scales, teacher, teacher, teacher)
    assert set(out.timings) == {"duration", "front", "decoder"}
    assert all(t > 0 for t in out.timings.values())
    np.testing.assert_array_equal(out.durations, det_out.durations)
    assert out.z.shape == (192, out.durations.sum()) and len(out.audio) == out.durations.sum() * 256
    assert np.abs(out.audio - det_out.audio).max() < 1e-4


def test_synthesize_reports_text_timing(engine, det_scales):
    out = engine.synthesize("Hello there.", scales=det_scales)
    assert list(out.timings) == ["text", "duration", "front", "decoder"] and out.timings["text"] > 0
    assert len(out.audio) == out.durations.sum() * 256


def test_deterministic_is_bit_for_bit_repeatable(teacher, ids, det_scales, det_out):
    again = teacher.full(ids, det_scales)
    np.testing.assert_array_equal(again.durations, det_out.durations)
    assert np.array_equal(again.z, det_out.z)
    assert np.array_equal(again.audio, det_out.audio)
    modular = [speak(ids, det_scales, teacher, teacher, teacher) for _ in range(2)]
    assert np.array_equal(modular[0].audio, modular[1].audio)


def test_default_scales_are_noisy(teacher, ids):
    assert teacher.default_scales.noise > 0 and teacher.default_scales.noise_w > 0
    first, second = teacher.full(ids), teacher.full(ids)
    assert not np.array_equal(first.z, second.z)
    assert not (len(first.audio) == len(second.audio) and np.array_equal(first.audio, second.audio))


def test_length_scale_stretches_durations(teacher, ids, det_scales, det_out):
    slow = teacher.durations(ids, Scales(0.0, 1.5, 0.0))
    assert slow.sum() > det_out.durations.sum() * 1.3


def test_decoder_alone_reproduces_the_full_graph(teacher, det_out):
    audio = teacher.decode(det_out.z)
    assert audio.shape == det_out.audio.shape
    assert np.abs(audio - det_out.audio).max() < 1e-4


def test_latent_given_own_durations_reproduces_z(teacher, ids, det_scales, det_out):
    z = teacher.latent(ids, det_out.durations, det_scales)
    assert z.shape == det_out.z.shape
    assert np.abs(z - det_out.z).max() < 1e-4


def test_latent_accepts_foreign_durations(teacher, ids, det_scales, det_out):
    durations = det_out.durations + 1
    z = teacher.latent(ids, durations, det_scales)
    assert z.shape == (192, durations.sum())
    assert len(teacher.decode(z)) == durations.sum() * 256


def test_graph_cut_is_found_by_structure(teacher):
    model = onnx.load(str(teacher.model_path))
    cut = find_cut(model)
    assert cut == teacher.cut
    nodes = {o: n for n in model.graph.node for o in n.output}
    assert nodes[cut.durations].op_type == "Ceil"
    assert cut.audio == model.graph.output[0].name
    assert cut.inputs == ("input", "input_lengths", "scales")
    # z feeds the decoder: the tensor every path to the audio passes through, with 192 channels
    assert any(cut.z in n.input and n.name.startswith("/dec") for n in model.graph.node)
    # measured on the joe voice; found by graph structure, not hard-coded
    assert (cut.durations, cut.z) == ("/Ceil_output_0", "/Mul_7_output_0")
    assert teacher.decoder_parameters < teacher.parameters / 5


def _tiny_graph(op: str) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node(op, ["input"], ["a"]), helper.make_node("Relu", ["a"], ["output"])]
    return helper.make_model(helper.make_graph(nodes, "tiny", [x], [y]))


def test_graph_without_ceil_fails_naming_what_is_missing():
    model = _tiny_graph("Floor")
    onnx.checker.check_model(model)
    with pytest.raises(TeacherGraphError, match="0 Ceil nodes.*durations"):
        find_cut(model)


def test_graph_without_latent_fails_naming_what_is_missing():
    with pytest.raises(TeacherGraphError, match="latent tensor z"):
        find_cut(_tiny_graph("Ceil"))


def test_load_by_explicit_path(teacher, tmp_path):
    voice = default_voice()
    assert voice.exists() and voice.suffix == ".onnx"
    # a copy elsewhere, config found next to the model as <model>.json
    (tmp_path / "v.onnx").write_bytes(voice.read_bytes())
    (tmp_path / "v.onnx.json").write_bytes(voice.with_name(voice.name + ".json").read_bytes())
    other = PiperTeacher.load(tmp_path / "v.onnx", threads=1)
    assert other.model_path == tmp_path / "v.onnx"
    assert other.cut == teacher.cut and other.parameters == teacher.parameters
    assert other.bytes_on_disk == voice.stat().st_size


def test_missing_voice_path_is_file_not_found(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        PiperTeacher.load(missing)
    (tmp_path / "only_model.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"only_model\.onnx\.json"):
        PiperTeacher.load(tmp_path / "only_model.onnx")


def test_teacher_size_matches_design(teacher):
    assert 15.0e6 < teacher.parameters < 16.5e6  # en_US-joe-medium: 15.65 M
    assert 1.5e6 < teacher.decoder_parameters < 1.8e6  # decoder: 1.66 M


def test_engine_splits_long_input_and_synthesises_piece_by_piece(engine, det_scales):
    from kdtts.engine import Mix

    text = ("The first sentence is short. The second one is a little longer than the first! "
            "Is the third a question? The fourth ends it.")
    result = engine.synthesize(text, Mix(), det_scales)
    assert result.sentences == 4
    assert len(result.audio) == result.durations.sum() * 256 == result.z.shape[1] * 256
    assert len(result.ids) == len(result.durations)
    t = engine.teacher
    pieces = [speak(np.array(u.ids), det_scales, t, t, t) for u in t.phonemizer(text)]
    assert np.array_equal(result.audio, np.concatenate([p.audio for p in pieces]))
    assert result.rtf > 0 and result.timings["text"] > 0


def test_engine_rejects_bad_text(engine):
    from kdtts.text import TextError

    for bad in ("", "   ", "🙂🙂", "x" * 2001):
        with pytest.raises(TextError):
            engine.synthesize(bad)


@pytest.mark.parametrize("mix", [(d, f, dec) for d in ("teacher", "student") for f in ("teacher", "student")
                                 for dec in ("teacher", "student")])
def test_every_teacher_student_mix_runs(engine, det_scales, mix):
    from kdtts.engine import Mix

    result = engine.synthesize("Every mix speaks.", Mix(*mix), det_scales)
    assert len(result.audio) == result.durations.sum() * engine.teacher.spec.hop_length
    assert result.z.shape == (192, result.durations.sum())
    assert np.sqrt(np.mean(result.audio ** 2)) > 1e-3
    teacher_durations = engine.teacher.durations(result.ids, det_scales)
    assert (mix[0] == "teacher") == np.array_equal(result.durations, teacher_durations)


def test_cut_sub_graphs_are_cached_by_the_voices_hash(teacher, det_scales, tmp_path, monkeypatch):
    """Cut once per voice content; a later load reads the sub-graphs from disk and never cuts again."""
    from kdtts.distill.data import voice_identity

    monkeypatch.setenv("KDTTS_CACHE_DIR", str(tmp_path))
    first = PiperTeacher.load(threads=1)
    entry, = (tmp_path / piper_graph.CACHE_KIND).iterdir()
    assert entry.name == voice_identity(default_voice())["sha256"]
    assert sorted(p.name for p in entry.iterdir()) == ["cut.json", "decoder.onnx", "durations.onnx", "front.onnx",
                                                       "full.onnx"]

    def no_cutting(model):
        raise AssertionError("cut again although the sub-graphs are cached")

    monkeypatch.setattr(piper_graph, "split_graph", no_cutting)
    second = PiperTeacher.load(threads=1)
    assert second.cut == first.cut == teacher.cut and second.parameters == teacher.parameters
    ids = np.asarray(teacher.phonemizer.ids("Cached."))
    assert np.array_equal(second.full(ids, det_scales).audio, teacher.full(ids, det_scales).audio)
