"""The Tacotron 2 teacher adapter, offline: random weights, and the real loading code with a local state dict."""
from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from kdtts.audio import log_mel
from kdtts.teachers.tacotron import BUNDLES, GriffinLimVocoder, TacotronTeacher, TeacherUnavailableError
from kdtts.text import TextError
from tests.conftest import sine

STEPS = 24


@pytest.fixture(scope="module")
def tacotron():
    return TacotronTeacher.load("TACOTRON2_GRIFFINLIM_CHAR_LJSPEECH", random_init=True, seed=1,
                                max_decoder_steps=STEPS, griffin_lim_iters=8)


def test_torchaudio_still_ships_the_bundles():
    import torchaudio.pipelines

    for name in BUNDLES:
        bundle = getattr(torchaudio.pipelines, name)
        assert isinstance(bundle, torchaudio.pipelines.Tacotron2TTSBundle)


def test_random_init_has_the_pipeline_architecture(tacotron):
    from torchaudio.models import Tacotron2

    assert isinstance(tacotron.tacotron2, Tacotron2) and tacotron.random_init
    assert 27e6 < tacotron.parameters < 29e6  # the LJSpeech Tacotron 2: about 28 M
    assert tacotron.tacotron2.n_mels == 80 and tacotron.vocoder_parameters == 0  # Griffin-Lim has no weights
    assert tacotron.sample_rate == 22050


def test_random_tacotron_synthesizes_offline(tacotron):
    out = tacotron.synthesize("Hello there, Dr. Smith. It costs $5!", seed=0)
    assert out.sentences == 2
    assert out.tokens.dtype == np.int64 and out.tokens.min() >= 0 and len(out.tokens) > 20
    assert out.mel.shape[0] == 80 and 2 <= out.mel.shape[1] <= 2 * STEPS
    assert out.audio.shape == (out.mel.shape[1] * 256,) and np.isfinite(out.audio).all()
    assert set(out.timings) == {"text", "acoustic", "vocoder"} and out.timings["acoustic"] > 0


def test_seed_makes_it_repeatable(tacotron):
    a, b = (tacotron.synthesize("Same words.", seed=3) for _ in range(2))
    assert np.array_equal(a.mel, b.mel) and np.array_equal(a.audio, b.audio)


def test_modules_compose(tacotron):
    tokens = tacotron.tokens("hello")
    assert tokens.tolist() == [19, 16, 23, 23, 26]  # the pipeline's character table: '_-!\'(),.:;? a..z'
    torch.manual_seed(0)
    mel = tacotron.acoustic(tokens)
    assert mel.shape[0] == 80 and 1 <= mel.shape[1] <= STEPS
    assert tacotron.decode(mel).shape == (mel.shape[1] * 256,)


def test_bad_text_is_a_text_error(tacotron):
    for bad in ("", "😀", "\u05e9\u05dc\u05d5\u05dd"):
        with pytest.raises(TextError):
            tacotron.synthesize(bad)


def test_griffin_lim_vocoder_inverts_a_real_mel():
    """The vocoder is real even when Tacotron 2 is random: a 440 Hz tone's mel comes back as 440 Hz."""
    tone = sine(0.5, freq=440.0)
    audio, _ = GriffinLimVocoder(n_iter=16)(log_mel(tone)[None])
    audio = audio[0].numpy()
    assert len(audio) == len(tone) // 256 * 256
    spectrum = np.abs(np.fft.rfft(audio[1024:-1024]))
    peak_hz = np.argmax(spectrum) * 22050 / len(audio[1024:-1024])
    assert abs(peak_hz - 440) < 25


def test_phone_bundle_random_init_keeps_its_symbol_table():
    teacher = TacotronTeacher.load("TACOTRON2_WAVERNN_PHONE_LJSPEECH", random_init=True, max_decoder_steps=4)
    assert teacher.tacotron2.embedding.num_embeddings == 96 and teacher.vocoder_parameters == 0
    assert teacher.synthesize("Hi.", seed=0).mel.shape[0] == 80


@pytest.mark.filterwarnings("ignore:Reached max decoder steps")
def test_real_loading_code_with_a_local_state_dict(monkeypatch):
    """`load()` without random_init goes through the bundle's own get_tacotron2 / get_vocoder."""
    import torchaudio.pipelines._tts.impl as impl
    from torchaudio.models import Tacotron2

    bundle = impl.TACOTRON2_GRIFFINLIM_CHAR_LJSPEECH
    torch.manual_seed(7)
    weights = Tacotron2(**bundle._tacotron2_params).state_dict()
    urls = []
    monkeypatch.setattr(impl, "load_state_dict_from_url", lambda url, **_: urls.append(url) or weights)
    teacher = TacotronTeacher.load("TACOTRON2_GRIFFINLIM_CHAR_LJSPEECH", max_decoder_steps=4)
    assert urls == ["https://download.pytorch.org/torchaudio/models/"
                    "tacotron2_english_characters_1500_epochs_ljspeech.pth"]
    assert not teacher.random_init
    assert torch.equal(teacher.tacotron2.state_dict()["embedding.weight"], weights["embedding.weight"])
    assert teacher.synthesize("Hi.", seed=0).audio.ndim == 1


def test_no_network_is_a_clear_error(monkeypatch):
    import torchaudio.pipelines._tts.impl as impl

    def offline(url, **_):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(impl, "load_state_dict_from_url", offline)
    with pytest.raises(TeacherUnavailableError, match="download.pytorch.org.*random_init=True"):
        TacotronTeacher.load("TACOTRON2_GRIFFINLIM_CHAR_LJSPEECH")


def test_unknown_bundle():
    with pytest.raises(TeacherUnavailableError, match="unknown Tacotron 2 bundle"):
        TacotronTeacher.load("TACOTRON3_MAGIC", random_init=True)


def test_the_registry_names_the_bundles_weight_files_and_torch_hubs_folder():
    """The registry checks the Tacotron teacher's availability without torch: its file names and folder must
    stay torchaudio's and torch.hub's."""
    import torch

    from kdtts.teachers.registry import TACOTRON_BUNDLE, TACOTRON_FILES, torch_hub_dir
    from kdtts.teachers.tacotron import _bundle

    bundle = _bundle(TACOTRON_BUNDLE)
    assert TACOTRON_FILES == (bundle._tacotron2_path, bundle._wavernn_path)
    assert torch_hub_dir() == Path(torch.hub.get_dir())
