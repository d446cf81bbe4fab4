"""Student modules, checkpoints and ONNX export."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from kdtts.student.checkpoint import SHIPPED_STUDENT, CheckpointError, load_student, read_metadata, save_student
from kdtts.student.layers import length_regulate
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig
from kdtts.student.onnx_student import OnnxStudent, load_fast
from kdtts.voice import Scales

SCALES = Scales()


def _mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    return (torch.arange(size)[None] < lengths[:, None]).unsqueeze(1).float()


@pytest.fixture(scope="module")
def student() -> StudentTTS:
    torch.manual_seed(0)
    return StudentTTS()


CONTEXT = {"front_attention_layers": 2, "front_dilated_layers": 1}


def _front_with_layer_scales(config: StudentConfig, seed: int) -> StudentTTS:
    """A fresh student whose front's layer scales are 0.5, so every front layer visibly changes z."""
    torch.manual_seed(seed)
    model = StudentTTS(config)
    with torch.no_grad():
        for name, p in model.front.named_parameters():
            if "gamma" in name:
                p.fill_(0.5)
            elif "relative_" in name or "duration_in" in name:  # zeros at init (growable): make them act
                p.normal_(0, 0.3)
    return model


@pytest.fixture(scope="module")
def context_student() -> StudentTTS:
    """A front with sentence context (self-attention, dilated frame blocks)."""
    return _front_with_layer_scales(StudentConfig(**CONTEXT), seed=1)


MEAN_HEAD = {"front_mean_head": True, "front_phoneme_channels": 64, "front_attention_layers": 1}


@pytest.fixture(scope="module")
def mean_head_student() -> StudentTTS:
    """A front whose phoneme-rate encoder (its own width) predicts each phoneme's mean z."""
    return _front_with_layer_scales(StudentConfig(**MEAN_HEAD), seed=2)


ORDERED = {**MEAN_HEAD, "front_relative_window": 3, "front_duration_input": True}


@pytest.fixture(scope="module")
def ordered_student() -> StudentTTS:
    """A mean-head front whose attention knows offsets and whose encoder reads durations."""
    return _front_with_layer_scales(StudentConfig(**ORDERED), seed=3)


@pytest.fixture(params=["plain", "context", "mean_head", "ordered"])
def any_student(request, student, context_student, mean_head_student, ordered_student) -> StudentTTS:
    return {"plain": student, "context": context_student, "mean_head": mean_head_student,
            "ordered": ordered_student}[request.param]


def test_parameter_budget(student):
    counts = student.count_parameters()
    assert counts["total"] <= 1_500_000  # the budget (teacher: 15.65 M)
    assert counts["total"] == counts["duration"] + counts["front"] + counts["decoder"]


def test_length_regulate_repeats_each_phoneme_for_its_duration():
    hidden = torch.arange(3, dtype=torch.float32).view(1, 1, 3)
    expanded, position, length = length_regulate(hidden, torch.tensor([[2, 1, 3]]))
    assert expanded.flatten().tolist() == [0, 0, 1, 2, 2, 2]
    assert position.flatten().tolist() == pytest.approx([0, 0.5, 0, 0, 1 / 3, 2 / 3])
    assert length.flatten().tolist() == [2, 2, 1, 3, 3, 3]


def test_module_shapes(student):
    ids = np.array([1, 0, 20, 0, 59, 0, 24, 0, 2])
    durations = student.durations(ids, SCALES)
    assert durations.shape == ids.shape and durations.min() >= 1
    z = student.latent(ids, durations, SCALES)
    assert z.shape == (192, durations.sum())
    audio = student.decode(z)
    assert audio.shape == (durations.sum() * 256,)
    assert np.abs(audio).max() <= 1.0


def test_padding_does_not_leak_into_valid_frames(any_student):
    """A padded batch gives the same z for the short item as running it alone (attention never looks at padding)."""
    student = any_student
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0]])
    durations = torch.tensor([[2, 3, 2, 4], [2, 3, 0, 0]])
    id_mask = _mask(torch.tensor([4, 2]), 4)
    frame_mask = _mask(durations.sum(1), 11)
    with torch.no_grad():
        batch = student.front(ids, durations, id_mask, frame_mask)
        alone = student.front(ids[1:, :2], durations[1:, :2], torch.ones(1, 1, 2), torch.ones(1, 1, 5))
        log_d_batch = student.duration(ids, id_mask)
        log_d_alone = student.duration(ids[1:, :2], torch.ones(1, 1, 2))
    assert torch.allclose(batch[1, :, :5], alone[0], atol=1e-5)
    assert torch.all(batch[1, :, 5:] == 0)
    assert torch.allclose(log_d_batch[1, :2], log_d_alone[0], atol=1e-5)


def test_checkpoint_round_trip(student, tmp_path):
    path = save_student(student, tmp_path / "s.safetensors", {"steps": 7})
    loaded = load_student(path)
    assert read_metadata(path)["info"]["steps"] == 7
    for key, value in student.state_dict().items():
        assert torch.allclose(loaded.state_dict()[key], value.half().float())
    assert path.stat().st_size < 10 * 1024 * 1024


def test_pickle_is_refused(student, tmp_path):
    path = tmp_path / "evil.safetensors"
    torch.save(student.state_dict(), path)  # a zip/pickle, as torch.save writes
    with pytest.raises(CheckpointError, match="pickle"):
        load_student(path)
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="pickle"):
        load_student(raw)


def test_truncated_and_foreign_files_are_refused(student, tmp_path):
    good = save_student(student, tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_student(truncated)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty or truncated"):
        load_student(empty)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a kdtts student"):
        load_student(foreign)
    with pytest.raises(CheckpointError, match="No student checkpoint"):
        load_student(tmp_path / "missing.safetensors")


def _patch_header(path, old: bytes, new: bytes) -> None:
    """Rewrite one config value in a checkpoint's JSON header in place (same length, so the file stays valid)."""
    data = path.read_bytes()
    patched = data.replace(old, new)
    assert patched != data
    path.write_bytes(patched)


def test_mismatched_architecture_is_refused(tmp_path):
    small = StudentTTS(StudentConfig(decoder_channels=64))
    path = save_student(small, tmp_path / "small.safetensors")
    # same header length, claims the default architecture: shapes no longer fit
    _patch_header(path, b'\\"decoder_channels\\": 64', b'\\"decoder_channels\\": 96')
    with pytest.raises(CheckpointError, match="shape"):
        load_student(path)


def test_onnx_export_matches_pytorch(any_student, tmp_path):
    from kdtts.student.onnx_student import export_checked

    path = save_student(any_student, tmp_path / "s.safetensors", half=False)
    report = export_checked(path, tmp_path / "onnx")
    assert report["durations_equal_fraction"] == 1.0
    assert report["z_max_abs_diff"] < 1e-4
    assert report["audio_max_abs_diff"] < 1e-4


def test_context_layers_fit_the_budget_and_see_the_whole_sentence(context_student):
    assert context_student.count_parameters()["total"] <= 1_500_000
    ids = torch.randint(3, 100, (1, 40))
    durations = torch.full((1, 40), 3)
    other = ids.clone()
    other[0, -1] = (ids[0, -1] + 1) % 100  # change only the last phoneme
    with torch.no_grad():
        z, z_other = (context_student.front(x, durations, torch.ones(1, 1, 40), torch.ones(1, 1, 120))
                      for x in (ids, other))
    # the first frames are ~110 frames (37 phonemes) away: beyond any convolution's reach, not attention's
    assert (z[..., :3] - z_other[..., :3]).abs().max() > 1e-4


def test_a_header_with_heads_that_do_not_divide_the_channels_is_refused(context_student, tmp_path):
    path = save_student(context_student, tmp_path / "c.safetensors")
    _patch_header(path, b'\\"front_heads\\": 2', b'\\"front_heads\\": 5')
    with pytest.raises(CheckpointError, match="divisible"):
        load_student(path)


def test_phoneme_means_undo_length_regulate():
    from kdtts.student.layers import phoneme_means

    hidden = torch.randn(2, 5, 4)
    durations = torch.tensor([[2, 0, 3, 1], [1, 4, 0, 0]])  # a 0-frame phoneme, and padding
    frames, _, _ = length_regulate(hidden, durations, 7)
    assert torch.allclose(phoneme_means(frames, durations), hidden * (durations > 0).unsqueeze(1), atol=1e-6)


def test_the_mean_head_carries_each_phonemes_mean_and_the_frame_layers_add_the_rest(mean_head_student):
    front = mean_head_student.front
    ids, durations = torch.randint(3, 100, (1, 12)), torch.randint(1, 6, (1, 12))
    masks = torch.ones(1, 1, 12), torch.ones(1, 1, int(durations.sum()))
    with torch.no_grad():
        z, means = front.forward_with_means(ids, durations, *masks)
        expanded, _, _ = length_regulate(means, durations, masks[1].shape[2])
        assert z.shape == expanded.shape == (1, 192, int(durations.sum())) and means.shape == (1, 192, 12)
        assert (z - expanded).abs().max() > 1e-3  # the frame layers add detail within phonemes
        saved = front.out.weight.clone(), front.out.bias.clone()
        front.out.weight.zero_(), front.out.bias.zero_()
        assert torch.allclose(front(ids, durations, *masks), expanded)  # without them: the means, repeated
        front.out.weight.copy_(saved[0]), front.out.bias.copy_(saved[1])
    assert mean_head_student.count_parameters()["front"] < StudentTTS().count_parameters()["front"] * 2


def test_relative_offsets_make_attention_see_order():
    from kdtts.student.layers import SelfAttention1d

    torch.manual_seed(0)
    x, mask, reverse = torch.randn(1, 16, 10), torch.ones(1, 1, 10), torch.arange(9, -1, -1)
    for window, order_blind in ((0, True), (2, False)):
        attention = SelfAttention1d(16, heads=2, layer_scale=1.0, relative_window=window)
        with torch.no_grad():
            for name, p in attention.named_parameters():
                if name.startswith("relative_"):
                    p.normal_(0, 0.5)
            same = torch.allclose(attention(x[..., reverse], mask), attention(x, mask)[..., reverse], atol=1e-5)
        assert same == order_blind, window


def test_offsets_and_durations_grow_onto_a_trained_front_without_changing_it(mean_head_student):
    from kdtts.student.grow import grow

    grown = grow(mean_head_student, {"front_relative_window": 4, "front_duration_input": True})
    ids, durations = torch.randint(3, 100, (1, 12)), torch.randint(1, 6, (1, 12))
    masks = torch.ones(1, 1, 12), torch.ones(1, 1, int(durations.sum()))
    with torch.no_grad():
        assert torch.allclose(grown.front(ids, durations, *masks), mean_head_student.front(ids, durations, *masks),
                              atol=1e-6)


def test_the_duration_input_reaches_the_means_only_when_asked(mean_head_student, ordered_student):
    ids, durations = torch.randint(3, 100, (1, 12)), torch.randint(1, 6, (1, 12))
    mask = torch.ones(1, 1, 12)
    with torch.no_grad():
        for model, reads in ((mean_head_student, False), (ordered_student, True)):
            means, other = (model.front.encode(ids, d, mask)[1] for d in (durations, durations + 3))
            assert ((means - other).abs().max() > 1e-4) == reads


def test_a_header_whose_flag_is_not_a_boolean_is_refused(mean_head_student, tmp_path):
    path = save_student(mean_head_student, tmp_path / "m.safetensors")
    _patch_header(path, b'\\"front_mean_head\\": true', b'\\"front_mean_head\\": 1   ')
    with pytest.raises(CheckpointError, match="true or false"):
        load_student(path)
    assert load_student(save_student(mean_head_student, tmp_path / "ok.safetensors")).config.front_mean_head


def test_grow_keeps_the_student_and_adds_context(student):
    from kdtts.student.grow import grow

    grown = grow(student, CONTEXT)
    assert grown.count_parameters()["front"] > student.count_parameters()["front"]
    ids, durations = np.array([1, 0, 20, 0, 59, 0, 24, 0, 2]), np.array([2, 1, 3, 1, 4, 1, 2, 1, 3])
    assert np.allclose(grown.latent(ids, durations, SCALES), student.latent(ids, durations, SCALES), atol=1e-6)
    with pytest.raises(ValueError, match="only add layers"):
        grow(student, {"front_channels": 64})


def test_compose_takes_each_module_from_its_own_architecture(student, context_student, tmp_path):
    from kdtts.student.checkpoint import compose

    plain = save_student(student, tmp_path / "plain.safetensors", half=False)
    context = save_student(context_student, tmp_path / "context.safetensors", half=False)
    composed = compose({"duration": plain, "front": context, "decoder": plain})
    assert composed.config.front_attention_layers == 2
    ids, durations = np.array([1, 0, 20, 0, 59, 0, 2]), np.array([2, 1, 3, 1, 4, 1, 3])
    assert np.allclose(composed.latent(ids, durations, SCALES), context_student.latent(ids, durations, SCALES),
                       atol=1e-6)
    z = composed.latent(ids, durations, SCALES)
    assert np.allclose(composed.decode(z), student.decode(z), atol=1e-6)
    odd = save_student(StudentTTS(StudentConfig(z_channels=96)), tmp_path / "odd.safetensors")
    with pytest.raises(CheckpointError, match="shared settings"):
        compose({"duration": plain, "front": odd, "decoder": plain})


@pytest.mark.skipif(not SHIPPED_STUDENT.exists(), reason="no shipped student yet")
def test_shipped_student_speaks(teacher, det_scales):
    student = load_student()
    assert student.count_parameters()["total"] <= 1_500_000
    assert SHIPPED_STUDENT.stat().st_size < 10 * 1024 * 1024
    ids = np.array(teacher.phonemizer.ids("The weather is lovely today."))
    teacher_durations = teacher.durations(ids, det_scales)
    durations = student.durations(ids, SCALES)
    # its durations track the teacher's: total length within 25 %
    assert abs(durations.sum() - teacher_durations.sum()) < 0.25 * teacher_durations.sum()
    audio = student.decode(student.latent(ids, teacher_durations, SCALES))
    assert len(audio) == teacher_durations.sum() * 256
    assert np.sqrt(np.mean(audio ** 2)) > 0.01  # not silent


def test_onnx_runtime_student_matches_pytorch(student, tmp_path, monkeypatch):
    monkeypatch.setenv("KDTTS_CACHE_DIR", str(tmp_path / "cache"))
    path = save_student(student, tmp_path / "s.safetensors")
    eager, fast = load_student(path), load_fast(path, threads=1)
    assert isinstance(fast, OnnxStudent) and fast.count_parameters() == eager.count_parameters()
    ids = np.array([1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 2])
    durations = eager.durations(ids, SCALES)
    assert (fast.durations(ids, SCALES) == durations).all()
    z = eager.latent(ids, durations, SCALES)
    assert np.abs(fast.latent(ids, durations, SCALES) - z).max() < 1e-4
    assert np.abs(fast.decode(z) - eager.decode(z)).max() < 1e-4
    assert len(list((tmp_path / "cache" / "onnx").iterdir())) == 1  # exported once, cached by content
    load_fast(path)
    assert len(list((tmp_path / "cache" / "onnx").iterdir())) == 1


@pytest.mark.skipif(not SHIPPED_STUDENT.exists(), reason="no shipped student")
def test_shipped_student_speaks_at_the_teachers_rate(teacher, det_scales):
    """Total length over the held-out sentences within 2 % of the teacher's (durations only: fast)."""
    from kdtts.distill.corpus import read_heldout

    student = load_student(SHIPPED_STUDENT)
    ratios, student_frames, teacher_frames = [], 0, 0
    for text in read_heldout():
        for utterance in teacher.phonemizer(text):
            ids = np.asarray(utterance.ids)
            t, s = int(teacher.durations(ids, det_scales).sum()), int(student.durations(ids, SCALES).sum())
            teacher_frames, student_frames = teacher_frames + t, student_frames + s
            ratios.append(s / t)
    assert abs(student_frames / teacher_frames - 1) <= 0.02
    assert np.median(np.abs(np.array(ratios) - 1)) <= 0.03


@pytest.mark.parametrize("n_fft, hop, frames", [(1024, 256, 37), (512, 128, 1)])
def test_numpy_istft_is_torchs(n_fft, hop, frames):
    """The onnxruntime student's inverse STFT (numpy, so it runs without torch) is the trained decoder's."""
    from kdtts.student.modules import istft as torch_istft
    from kdtts.student.onnx_student import hann_window, istft

    rng = np.random.default_rng(0)
    magnitude = rng.random((n_fft // 2 + 1, frames)).astype(np.float32)
    phase = rng.uniform(-np.pi, np.pi, magnitude.shape).astype(np.float32)
    expected = torch_istft(torch.from_numpy(magnitude)[None], torch.from_numpy(phase)[None],
                           torch.hann_window(n_fft), hop)[0].numpy()
    audio = istft(magnitude, phase, hann_window(n_fft), hop)
    assert audio.shape == (frames * hop,) and np.abs(audio - expected).max() < 1e-6
