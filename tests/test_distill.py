"""Distillation: teacher cache, the KD loss, training steps, resume."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from kdtts.distill.batches import crop, segment_batch, utterance_batch
from kdtts.distill.config import DistillConfig
from kdtts.distill.data import build_cache, load_cache, read_manifest
from kdtts.distill.loop import learning_rate
from kdtts.distill.train import distill
from kdtts.distill.trainer import KDTrainer, ModuleCriterion, Predictions, Targets
from kdtts.student.checkpoint import load_student
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig

SENTENCES = ["The cat sat on the mat.", "A bird sang in the tree.", "We walked home after dark.",
             "Bright stars filled the sky.", "Rain fell on the roof all night.", "She opened the red door.",
             "The kettle boiled and whistled.", "Two dogs ran along the beach."]
TINY = {"duration_channels": 16, "front_channels": 16, "front_phoneme_layers": 1, "front_frame_layers": 1,
        "decoder_channels": 32, "decoder_layers": 1}


@pytest.fixture(scope="module")
def cache(teacher, tmp_path_factory):
    path = tmp_path_factory.mktemp("cache")
    build_cache(path, SENTENCES, teacher, progress=False)
    return path


def test_cache_is_complete_and_resumable(cache, teacher):
    items = read_manifest(cache)
    assert [i["text"] for i in items] == SENTENCES
    utts = load_cache(cache)
    for u in utts:
        assert u.z.shape == (192, int(u.durations.sum()))
        assert u.audio.shape[0] == u.z.shape[1] * 256
    mtime = (cache / "manifest.jsonl").stat().st_mtime_ns
    build_cache(cache, SENTENCES, teacher, progress=False)  # nothing left to do
    assert (cache / "manifest.jsonl").stat().st_mtime_ns == mtime
    coverage = json.loads((cache / "coverage.json").read_text())
    assert coverage["utterances"] == len(SENTENCES)
    assert 0 < coverage["phonemes_seen"] <= coverage["phonemes_in_voice"]


def test_cached_teacher_is_deterministic(cache, teacher, det_scales):
    u = load_cache(cache)[0]
    out = teacher.full(u.ids.numpy(), det_scales)
    assert (out.durations == u.durations.numpy()).all()


def test_compute_loss_mixes_ground_truth_by_alpha():
    student = StudentTTS(StudentConfig(**TINY))
    criterion = ModuleCriterion()
    durations = torch.tensor([[2, 3]])
    mask = torch.ones(1, 1, 2)
    teacher = Targets(durations=durations, id_mask=mask)
    truth = Targets(durations=torch.tensor([[4, 4]]), id_mask=mask)
    prediction = Predictions(log_durations=torch.log(durations.float()))  # exactly the teacher
    kd_only, _ = KDTrainer(student, criterion, alpha=1.0).compute_loss(teacher, prediction, truth)
    assert float(kd_only) == pytest.approx(0.0, abs=1e-7)
    mixed, parts = KDTrainer(student, criterion, alpha=0.25).compute_loss(teacher, prediction, truth)
    log_ratio = torch.log(durations.float()) - torch.log(torch.tensor([4.0, 4.0]))
    total_term = 10.0 * float(torch.log(torch.tensor(5.0 / 8.0)) ** 2)  # predicted 5 frames, truth 8
    expected = 0.75 * (float(torch.mean(log_ratio ** 2)) + total_term)
    assert float(mixed) == pytest.approx(expected, rel=1e-5)
    assert "gt_duration" in parts
    with pytest.raises(ValueError):
        KDTrainer(student, criterion, alpha=1.5)
    with pytest.raises(ValueError):
        KDTrainer(student, criterion, modules=("vocoder",))


def test_training_steps_lower_the_loss(cache):
    import random

    torch.manual_seed(0)
    student = StudentTTS(StudentConfig(**TINY))
    trainer = KDTrainer(student, ModuleCriterion(), lr=3e-3)
    rng = random.Random(0)
    utts = load_cache(cache)
    ids, targets, truth = utterance_batch([crop(u, 32, 256, rng) for u in utts[:4]], torch.device("cpu"))
    assert truth is None  # the teacher's own readings: no recordings
    targets.audio = None
    z_seg, a_seg, _ = segment_batch(utts[:4], 16, 256, rng, torch.device("cpu"))
    targets.audio = a_seg
    losses = [trainer.step(ids, targets, z_seg) for _ in range(25)]
    for key in ("kd_duration", "kd_front", "kd_decoder"):
        assert losses[-1][key] < losses[0][key], key


def test_only_selected_modules_change(cache):
    torch.manual_seed(0)
    student = StudentTTS(StudentConfig(**TINY))
    before = {k: v.clone() for k, v in student.state_dict().items()}
    trainer = KDTrainer(student, ModuleCriterion(), modules=("decoder",))
    import random

    rng = random.Random(0)
    utts = load_cache(cache)
    ids, targets, _ = utterance_batch(utts[:2], torch.device("cpu"))
    z_seg, targets.audio, _ = segment_batch(utts[:2], 16, 256, rng, torch.device("cpu"))
    trainer.step(ids, targets, z_seg)
    after = student.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("decoder."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))


def test_end_to_end_front_term_trains_the_front_through_the_frozen_decoder(cache):
    """The front's z goes through the student decoder and is scored on audio against the teacher's audio of the
    same frames: the front learns from it, the decoder does not change, and the windows line up."""
    import random

    from kdtts.distill.batches import audio_windows
    from kdtts.distill.trainer import frame_windows

    z = torch.arange(2 * 3 * 5, dtype=torch.float32).view(2, 3, 5)
    windows = frame_windows(z, torch.tensor([1, 3]), 4)
    assert torch.equal(windows[0], z[0, :, 1:5]) and torch.equal(windows[1, :, :2], z[1, :, 3:5])
    assert torch.all(windows[1, :, 2:] == 0)  # past the end: zeros, as the teacher's audio is silence there

    torch.manual_seed(0)
    student = StudentTTS(StudentConfig(**TINY))
    decoder_before = {k: v.clone() for k, v in student.decoder.state_dict().items()}
    trainer = KDTrainer(student, ModuleCriterion(front_audio_weight=1.0), modules=("front",), lr=3e-3)
    rng = random.Random(0)
    picked = [crop(u, 32, 256, rng) for u in load_cache(cache)[:4]]
    ids, targets, _ = utterance_batch(picked, torch.device("cpu"))
    targets.window_starts, targets.window_audio = audio_windows(picked, 8, 256, rng, torch.device("cpu"))
    start = int(targets.window_starts[0])
    assert torch.equal(targets.window_audio[0], picked[0].audio[start * 256:(start + 8) * 256])
    losses = [trainer.step(ids, targets, None) for _ in range(20)]
    assert losses[-1]["kd_front_audio"] < losses[0]["kd_front_audio"]
    assert all(torch.equal(v, student.decoder.state_dict()[k]) for k, v in decoder_before.items())


def test_mean_head_loss_compares_with_the_teachers_per_phoneme_mean_z_and_falls(cache):
    import random

    import numpy as np

    from kdtts.distill.trainer import mean_head_loss

    rng = random.Random(0)
    picked = [crop(u, 32, 256, rng) for u in load_cache(cache)[:4]]
    ids, targets, _ = utterance_batch(picked, torch.device("cpu"))
    means = torch.zeros(len(picked), 192, ids.shape[1])  # the teacher's own means: no loss
    for i, u in enumerate(picked):
        edges = np.concatenate([[0], np.cumsum(u.durations.numpy())])
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            means[i, :, k] = u.z[:, a:b].float().mean(1)
    assert float(mean_head_loss(means, targets)) < 1e-4
    assert float(mean_head_loss(means + 0.5, targets)) == pytest.approx(0.5, abs=1e-4)

    torch.manual_seed(0)
    student = StudentTTS(StudentConfig(**TINY, front_mean_head=True, front_phoneme_channels=32))
    trainer = KDTrainer(student, ModuleCriterion(front_mean_weight=1.0), modules=("front",), lr=3e-3)
    losses = [trainer.step(ids, targets, None) for _ in range(20)]
    assert losses[-1]["kd_front_mean"] < losses[0]["kd_front_mean"]
    assert losses[-1]["kd_front"] < losses[0]["kd_front"]


def test_front_cache_pairs_the_fronts_z_with_the_teachers_audio(cache, tmp_path):
    """The decoder's corpus as the student feeds it: the front's z for the teacher's durations, frame-aligned
    with the teacher's own audio, readable by the same loader the adversarial stage uses."""
    from kdtts.distill.front_cache import build_front_cache
    from kdtts.student.checkpoint import save_student

    torch.manual_seed(0)
    student = StudentTTS(StudentConfig(**TINY))
    path = save_student(student, tmp_path / "s.safetensors", half=False)
    out = build_front_cache(cache, tmp_path / "front", path, limit=3, progress=False)
    source, front = load_cache(cache, limit=3), load_cache(out)
    assert len(front) == 3
    for s, f in zip(source, front):
        assert torch.equal(f.durations, s.durations) and f.z.shape == s.z.shape
        assert torch.allclose(f.audio, s.audio, atol=1e-4)
        expected = student.latent(s.ids.numpy(), s.durations.numpy(), None)
        assert torch.allclose(f.z.float(), torch.from_numpy(expected), atol=2e-3)  # stored in fp16
    assert build_front_cache(cache, tmp_path / "front", path, limit=3, progress=False) == out  # resumable
    assert len(read_manifest(out)) == 3


def _config(cache) -> DistillConfig:
    return DistillConfig(cache_dir=str(cache), sentences=len(SENTENCES), student=TINY, max_steps=6,
                         batch_utts=3, batch_segments=3, segment_frames=16, validation_utts=2,
                         checkpoint_every=2, sample_every=1000, warmup_steps=2)


def test_resume_gives_the_same_state_as_an_uninterrupted_run(cache, tmp_path):
    straight = distill(_config(cache), tmp_path / "straight", progress=False)
    distill(_config(cache), tmp_path / "resumed", progress=False, max_steps=4)  # "killed" after step 4
    with (tmp_path / "resumed" / "loss.csv").open("a") as f:  # a row written after the last saved state
        f.write("6,0.001,0.0,9.9\n")
    resumed = distill(_config(cache), tmp_path / "resumed", resume=True, progress=False)
    a, b = load_student(straight).state_dict(), load_student(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_student(resumed).info["steps"] == 6
    rows = list(csv.DictReader((tmp_path / "resumed" / "loss.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]  # neither repeated nor lost
    seconds = [float(r["seconds"]) for r in rows]
    assert seconds == sorted(seconds) and float(rows[-1]["loss"]) != 9.9  # elapsed time continues
    assert (tmp_path / "resumed" / "loss.png").stat().st_size > 0
    assert (tmp_path / "resumed" / "samples").is_dir()


def test_cancel_stops_early_and_still_exports(cache, tmp_path):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    out = distill(_config(cache), tmp_path / "cancelled", progress=False, should_stop=stop)
    student = load_student(out)
    assert student.info["stopped_early"] is True and student.info["steps"] == 3


def test_bad_config_keys_are_rejected(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"max_stepz": 3}))
    with pytest.raises(ValueError, match="max_stepz"):
        DistillConfig.from_file(path)


def test_learning_rate_schedule_warms_up_then_follows_a_cosine():
    cfg = DistillConfig(lr=1e-3, lr_min=1e-4, warmup_steps=10, max_steps=110)
    assert learning_rate(cfg, 0) == pytest.approx(1e-4)            # 1/10 of the peak at the first step
    assert learning_rate(cfg, 9) == pytest.approx(1e-3)            # peak at the end of warm-up
    assert learning_rate(cfg, 60) == pytest.approx(5.5e-4)         # half-way down the cosine
    assert learning_rate(cfg, 110) == pytest.approx(1e-4)          # lr_min at max_steps, and after
    assert learning_rate(cfg, 500) == pytest.approx(1e-4)
    steps = [learning_rate(cfg, s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(steps, steps[1:]))


def test_finetune_request_maps_to_a_distill_config(tmp_path):
    from kdtts.distill.finetune import FinetuneRequest

    request = FinetuneRequest(steps=40, lr=2e-4, alpha=0.5, temperature=0.3, modules=("decoder",), seed=7)
    cfg = request.to_config(tmp_path / "cache", tmp_path / "voice.onnx", tmp_path / "base.safetensors", spoken=23)
    assert (cfg.max_steps, cfg.lr, cfg.lr_min, cfg.alpha, cfg.temperature, cfg.seed) == (40, 2e-4, 2e-5, 0.5, 0.3, 7)
    assert cfg.modules == ["decoder"] and cfg.init.endswith("base.safetensors") and cfg.sentences == 23
    assert cfg.validation_utts == 4 and cfg.warmup_steps == 4 and cfg.sample_every == 40
    assert request.to_config(tmp_path, tmp_path / "v.onnx", None, spoken=3).init is None  # a fresh student
    assert FinetuneRequest(steps=1000).to_config(tmp_path, tmp_path, None, 100).validation_utts == 8


def test_cache_is_keyed_by_temperature(cache, teacher):
    with pytest.raises(ValueError, match="temperature"):
        build_cache(cache, ["A sentence it has not read yet."], teacher, temperature=0.5, progress=False)


def test_student_takes_the_teachers_audio_spec(cache, tmp_path):
    out = distill(DistillConfig(**{**_config(cache).__dict__, "max_steps": 1, "checkpoint_every": 1}),
                  tmp_path / "spec", progress=False)
    student = load_student(out)
    record = json.loads((cache / "teacher.json").read_text())
    assert student.spec.sample_rate == record["sample_rate"] and student.spec.hop_length == record["hop_length"]
    assert student.info["teacher"]["voice_name"] == "en_US-joe-medium"
    assert len(student.info["teacher"]["voice_sha256"]) == 16 and "voice" not in student.info["teacher"]


def test_cli_flags_come_from_the_config_dataclass(tmp_path):
    import argparse

    from kdtts.distill.config import add_arguments, overrides

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--max-steps", "5", "--modules", "duration", "front", "--lr", "0.01",
                              "--student", '{"decoder_layers": 2}', "--grow-with-cache"])
    assert overrides(args) == {"max_steps": 5, "modules": ["duration", "front"], "lr": 0.01,
                               "student": {"decoder_layers": 2}, "grow_with_cache": True}
    path = tmp_path / "flat.json"
    path.write_text(json.dumps({"cache_dir": "c", "max_steps": 9, "lr": 0.5}))  # today's flat config files
    cfg = DistillConfig.from_file(path, **overrides(args))
    assert cfg.cache_dir == "c" and cfg.max_steps == 5 and cfg.lr == 0.01
    assert DistillConfig().student == {} and DistillConfig().modules == ["duration", "front", "decoder"]


def test_the_phase_term_sees_a_phase_shift_as_much_as_a_gain_error():
    from kdtts.distill.losses import ComplexSTFTLoss

    t = torch.arange(8192) / 22050
    target = 0.3 * torch.sin(2 * torch.pi * 220 * t)[None]
    shifted = 0.3 * torch.sin(2 * torch.pi * 220 * t + 1.5)[None]  # the same tone, a quarter period later
    phase = ComplexSTFTLoss()
    assert float(phase(target, target)) == 0.0
    assert float(phase(2 * target, target)) == pytest.approx(1.0, abs=0.01)  # relative to the target's magnitude
    # the same magnitude spectrum, other phases: as far off as doubling the level (|1 - e^{1.5i}| = 1.36)
    assert float(phase(shifted, target)) == pytest.approx(1.36, abs=0.1)


def test_the_anti_wrapping_phase_term_sees_phase_only_and_wraps():
    """Blind to gain (it cannot be lowered by shrinking a bin), sees a phase shift, and a shift of 2 pi - 0.1
    is as small an error as 0.1: what makes it learnable where the complex-spectrum term was not."""
    from kdtts.distill.losses import AntiWrappingPhaseLoss

    t = torch.arange(8192) / 22050

    def tone(shift: float, gain: float = 0.3) -> torch.Tensor:
        return gain * torch.sin(2 * torch.pi * 220 * t + shift)[None]

    phase = AntiWrappingPhaseLoss()
    assert float(phase(tone(0.0), tone(0.0))) == pytest.approx(0.0, abs=1e-3)
    assert float(phase(tone(0.0, gain=0.03), tone(0.0))) == pytest.approx(0.0, abs=1e-3)
    # a constant shift moves the instantaneous phase only; group delay and frequency stay, but for the two
    # edge frames (reflection padding): about (1.5 + 0 + 0) / 3
    assert float(phase(tone(1.5), tone(0.0))) == pytest.approx(0.5, abs=0.07)
    assert float(phase(tone(2 * torch.pi - 0.1), tone(0.0))) == pytest.approx(0.1 / 3, abs=0.01)
    # another frequency changes all three: far more than a phase offset of the right one
    other = 0.3 * torch.sin(2 * torch.pi * 260 * t)[None]
    assert float(phase(other, tone(0.0))) > 1.5


def test_the_decoder_criterion_adds_the_phase_term_by_its_weight():
    from kdtts.distill.losses import AntiWrappingPhaseLoss, WaveformCriterion

    generator = torch.Generator().manual_seed(1)
    target = torch.randn(2, 8192, generator=generator)
    predicted = target + 0.5 * torch.randn(2, 8192, generator=generator)
    plain, phased = WaveformCriterion(), WaveformCriterion(wrapped_phase_weight=2.0)
    phase = float(AntiWrappingPhaseLoss()(predicted, target))
    assert phase > 0.1
    assert float(phased(predicted, target)) == pytest.approx(float(plain(predicted, target)) + 2.0 * phase, rel=1e-5)


def test_unrelated_phases_score_half_pi():
    """The reference values the cards quote: two independent noises' instantaneous phases differ by pi / 2 on
    average; their group delays and instantaneous frequencies by less (about 1.1), since the window and the
    frames' overlap correlate neighbouring bins within each signal."""
    from kdtts.distill.losses import wrapped_phase_errors

    generator = torch.Generator().manual_seed(0)
    a, b = (torch.stft(torch.randn(4, 16384, generator=generator), 1024, 256, window=torch.hann_window(1024),
                       return_complex=True) for _ in range(2))
    instantaneous, group_delay, frequency = (float(e) for e in wrapped_phase_errors(a, b))
    assert instantaneous == pytest.approx(torch.pi / 2, abs=0.03)
    assert group_delay == pytest.approx(1.09, abs=0.05) and frequency == pytest.approx(1.09, abs=0.05)
    assert all(float(e) < 1e-3 for e in wrapped_phase_errors(a, a))


def test_packed_ids_rebuild_the_same_cache_and_leave_out_what_does_not_match(cache, teacher, tmp_path):
    """A cache travels as ids and is read again by the teacher: the same arrays, bit for bit; an utterance
    whose frame count differs is left out, not mislabelled; another voice's pack is refused."""
    from kdtts.distill.portable_cache import pack, rebuild

    rows = [json.loads(line) for line in pack(cache, tmp_path / "pack").open()]
    assert [r["text"] for r in rows] == SENTENCES
    rows[1]["frames"] += 1
    (tmp_path / "pack" / "ids.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = rebuild(tmp_path / "pack", teacher.model_path, tmp_path / "rebuilt", workers=2, limit=4)
    assert report == {"rebuilt": 3, "left_out": 1}
    rebuilt = read_manifest(tmp_path / "rebuilt")
    assert [r["text"] for r in rebuilt] == [SENTENCES[i] for i in (0, 2, 3)]
    for old, new in zip(load_cache(cache, texts=set(SENTENCES[:4]) - {SENTENCES[1]}), load_cache(tmp_path / "rebuilt")):
        assert all(torch.equal(getattr(old, k), getattr(new, k)) for k in ("ids", "durations", "z", "audio"))
    with pytest.raises(ValueError, match="not empty"):
        rebuild(tmp_path / "pack", teacher.model_path, tmp_path / "rebuilt", workers=1)
    record = json.loads((tmp_path / "pack" / "teacher.json").read_text())
    (tmp_path / "pack" / "teacher.json").write_text(json.dumps({**record, "voice_sha256": "0" * 16}))
    with pytest.raises(ValueError, match="another voice"):
        rebuild(tmp_path / "pack", teacher.model_path, tmp_path / "other", workers=1)


def test_variance_term_is_zero_for_the_target_and_pulls_a_shrunk_latent_out():
    """The spread-matching front term: nothing to learn from a perfect copy, a positive loss for a latent shrunk
    toward its mean, and a gradient that widens it (the cure for an over-smoothed front)."""
    from kdtts.distill.losses import variance_match_loss

    torch.manual_seed(0)
    target = torch.randn(2, 8, 50).cumsum(-1)
    mask = torch.ones(2, 1, 50)
    mask[1, :, 40:] = 0
    assert float(variance_match_loss(target, target, mask)) < 1e-3
    mean = target.mean(-1, keepdim=True)
    shrunk = (mean + 0.6 * (target - mean)).requires_grad_(True)
    loss = variance_match_loss(shrunk, target, mask)
    assert float(loss) > 0.1
    loss.backward()
    # a gradient step widens every channel's spread
    widened = shrunk - 0.5 * shrunk.grad
    assert float(variance_match_loss(widened.detach(), target, mask)) < float(loss)
    assert bool(((widened - mean).std(-1) > (shrunk - mean).std(-1)).all())


def test_z_mix_cache_keeps_the_teachers_z_where_the_hash_says(cache, tmp_path):
    """A z-mix cache: each utterance carries the front's z or the teacher's, as `takes_front_z` decides."""
    from kdtts.distill.front_cache import build_front_cache, takes_front_z
    from kdtts.student.checkpoint import save_student

    torch.manual_seed(0)
    student = StudentTTS(StudentConfig(**TINY))
    path = save_student(student, tmp_path / "s.safetensors", half=False)
    source = load_cache(cache, limit=4)
    mix = 0.5
    out = build_front_cache(cache, tmp_path / "mix", path, limit=4, progress=False, mix=mix)
    for s, f in zip(source, load_cache(out)):
        if takes_front_z(s.ids.numpy(), mix):
            expected = torch.from_numpy(student.latent(s.ids.numpy(), s.durations.numpy(), None))
        else:
            expected = s.z.float()
        assert torch.allclose(f.z.float(), expected, atol=2e-3)
        assert torch.allclose(f.audio, s.audio, atol=1e-4)
    assert not takes_front_z(source[0].ids.numpy(), 0.0) and takes_front_z(source[0].ids.numpy(), 1.0)


def test_loudness_calibration_folds_a_gain_into_the_decoder(cache):
    """apply_gain scales the waveform exactly (the head's log-magnitude bias), and calibrate moves the student's
    median loudness gap to the teacher's cached audio to zero."""
    import numpy as np

    from kdtts.distill.loudness import apply_gain, calibrate, loudness_gap

    torch.manual_seed(0)
    student = StudentTTS(StudentConfig(**TINY))
    z = torch.randn(1, 192, 40)
    with torch.no_grad():
        before = student.decoder(z)
        apply_gain(student, 20 * np.log10(2.0))
        assert torch.allclose(student.decoder(z), 2 * before, rtol=1e-3, atol=1e-6)
    utts = load_cache(cache, limit=4)
    apply_gain(student, -6.0 - float(np.median(loudness_gap(student, utts))))  # 6 LU quieter than the teacher
    report = calibrate(student, utts)
    assert report["gap_mean_before_lu"] < -4.0 and abs(report["gain_db"] - 6.0) < 0.2
    assert abs(float(np.median(loudness_gap(student, utts)))) < 0.2
