"""Audio utilities: mel frames line up with z frames, WAV round trip, resampling."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from kdtts.audio import AudioSpec, log_mel, read_wav, resample, write_wav
from tests.conftest import sine


@pytest.mark.parametrize("frames", [1, 2, 7, 86])
def test_log_mel_frames_match_z_frames(frames):
    audio = sine(frames * 256 / 22050)
    assert len(audio) == frames * 256
    mel = log_mel(audio)
    assert mel.shape == (80, frames)
    assert torch.isfinite(mel).all()


def test_log_mel_frames_floor_division_and_batches():
    assert log_mel(sine(1.0)).shape == (80, 22050 // 256)
    assert log_mel(sine(0.004)).shape == (80, 0)  # 88 samples: not one whole frame
    batch = torch.from_numpy(np.stack([sine(0.5), sine(0.5, freq=440.0)]))
    mel = log_mel(batch)
    assert mel.shape == (2, 80, len(batch[0]) // 256)
    assert torch.allclose(mel[1], log_mel(batch[1]), atol=1e-5)


def test_log_mel_peaks_at_the_tone():
    config = AudioSpec()
    mel = log_mel(sine(1.0, freq=1000.0))
    silence = log_mel(np.zeros(22050, dtype=np.float32))
    assert torch.all(silence == np.log(config.floor))
    peak_band = int(mel.mean(dim=1).argmax())
    # the 1 kHz band of an 80-band slaney mel scale up to 8 kHz is around band 20-30
    assert 15 < peak_band < 35


def test_teacher_audio_mel_lines_up_with_z(teacher, det_scales):
    out = teacher.full(np.asarray(teacher.phonemizer.ids("A short test.")), det_scales)
    assert log_mel(out.audio).shape[-1] == out.z.shape[1] == len(out.audio) // 256


def test_wav_round_trip(tmp_path):
    audio = sine(0.25)
    path = write_wav(tmp_path / "sub" / "a.wav", audio, 22050)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    back, rate = read_wav(path)
    assert rate == 22050 and back.dtype == np.float32 and len(back) == len(audio)
    assert np.max(np.abs(back - audio)) < 1 / 32767 + 1e-6


def test_wav_clips_instead_of_wrapping(tmp_path):
    back, _ = read_wav(write_wav(tmp_path / "loud.wav", np.array([2.0, -2.0, 0.5], dtype=np.float32), 16000))
    assert back[0] > 0.99 and back[1] < -0.99 and abs(back[2] - 0.5) < 1e-3


def test_read_wav_downmixes_and_resamples(tmp_path):
    stereo = np.stack([sine(0.5, 44100), np.zeros(22050, dtype=np.float32)], axis=1)
    sf.write(str(tmp_path / "s.wav"), stereo, 44100)
    audio, rate = read_wav(tmp_path / "s.wav", sample_rate=22050)
    assert rate == 22050 and audio.ndim == 1
    assert abs(len(audio) - 11025) <= 1


@pytest.mark.parametrize("orig, new", [(22050, 16000), (16000, 22050), (22050, 44100), (48000, 22050)])
def test_resample_changes_length_by_rate_ratio(orig, new):
    audio = sine(1.0, orig)
    out = resample(audio, orig, new)
    assert out.dtype == np.float32
    assert abs(len(out) - len(audio) * new / orig) <= 1
    # the tone survives: same frequency, same loudness
    assert abs(np.sqrt(np.mean(out[100:-100] ** 2)) - np.sqrt(np.mean(audio ** 2))) < 0.01


def test_resample_same_rate_is_identity():
    audio = sine(0.1)
    assert np.array_equal(resample(audio, 22050, 22050), audio)
