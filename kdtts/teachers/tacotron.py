"""The second teacher family: Tacotron 2 (+ WaveRNN or Griffin-Lim) from `torchaudio.pipelines` (LJSpeech).

Two modules, each callable alone, as with the Piper teacher:

* acoustic model: tokens -> natural-log 80-band mel [80, frames] (Tacotron 2, attention + autoregressive);
* vocoder: mel -> waveform at 22,050 Hz (WaveRNN, or Griffin-Lim which has no weights).

The Griffin-Lim bundles' mel is the same representation as `kdtts.audio.log_mel` (slaney mel, n_fft 1024,
hop 256, 0-8 kHz, natural log of magnitudes), so their Tacotron 2 mels and Piper-teacher mels can be compared
directly. The WaveRNN bundles' Tacotron 2 was trained on WaveRNN's own features instead (hop 275: see
`bundle._wavernn_params`), so a vocoder for them must be built for that hop.

`TacotronTeacher.load(bundle)` is the real loading code: it asks the torchaudio bundle for its text
processor, Tacotron 2 and vocoder, which downloads weights from download.pytorch.org at run time (and,
for the phoneme bundles, a DeepPhonemizer model). Where that cannot happen (offline machines, CI),
`load(bundle, random_init=True)` builds the same architectures with random weights and a Griffin-Lim
vocoder, no network: the plumbing and shapes are real, the speech is noise.

Note that Tacotron 2's pre-net keeps dropout on at inference (as in the paper and torchaudio), so its
output varies run to run; pass `seed` for repeatable output.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from kdtts.text import TextError, split_sentences, validate

BUNDLES = ("TACOTRON2_WAVERNN_PHONE_LJSPEECH", "TACOTRON2_WAVERNN_CHAR_LJSPEECH",
           "TACOTRON2_GRIFFINLIM_PHONE_LJSPEECH", "TACOTRON2_GRIFFINLIM_CHAR_LJSPEECH")
SAMPLE_RATE = 22050
HOP_LENGTH = 256
N_MELS = 80


class TeacherUnavailableError(RuntimeError):
    """A Tacotron 2 bundle that cannot be loaded here (unknown name, no network for its weights)."""


@dataclass
class TacotronOutput:
    """One text through Tacotron 2 and its vocoder (sentences concatenated)."""

    tokens: np.ndarray     # int64 [N] text-processor ids, all sentences
    mel: np.ndarray        # float32 [80, frames] natural-log mel
    audio: np.ndarray      # float32 [samples]
    sentences: int = 1
    timings: dict[str, float] = field(default_factory=dict)  # seconds: text, acoustic, vocoder


class GriffinLimVocoder(torch.nn.Module):
    """The pipeline's Griffin-Lim vocoder with a chosen iteration count: kdtts's one Griffin-Lim
    (`kdtts.evaluate.griffinlim`; the pipeline's mel is `kdtts.audio.log_mel`'s), deterministic, and aligned
    so that frame t covers samples [t * hop, (t + 1) * hop) as in log_mel.

    Same call convention as the bundle vocoders: `vocoder(log_mel [B, 80, T], lengths) -> (audio [B, S], lengths)`,
    with S = T * 256.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, n_iter: int = 32) -> None:
        from kdtts.audio import AudioSpec

        super().__init__()
        self.n_iter = n_iter
        self.spec = AudioSpec(sample_rate=SAMPLE_RATE, hop_length=HOP_LENGTH, n_fft=1024, n_mels=N_MELS)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None):
        from kdtts.evaluate.griffinlim import griffin_lim_from_mel

        audio = griffin_lim_from_mel(mel, mel.shape[-1] * HOP_LENGTH, self.spec, self.n_iter)
        return torch.from_numpy(audio), (None if lengths is None else lengths * HOP_LENGTH)


def _bundle(name: str):
    import torchaudio.pipelines as pipelines

    if name not in BUNDLES or not hasattr(pipelines, name):
        raise TeacherUnavailableError(f"unknown Tacotron 2 bundle {name!r}; torchaudio ships {list(BUNDLES)}")
    return getattr(pipelines, name)


def _architecture(bundle, name: str) -> dict:
    """The bundle's Tacotron 2 constructor arguments (the same architecture the weights were trained in)."""
    params = getattr(bundle, "_tacotron2_params", None)
    if params is None:  # private in torchaudio; rebuild from the symbol table if it ever moves
        from torchaudio.pipelines._tts import utils

        symbols = utils._get_phones() if "_PHONE_" in name else utils._get_chars()
        params = utils._get_taco_params(n_symbols=len(symbols))
    return dict(params)


class TacotronTeacher:
    """Tacotron 2 + vocoder, with the acoustic model and the vocoder callable on their own."""

    kind = "teacher"
    sample_rate = SAMPLE_RATE
    hop_length = HOP_LENGTH

    def __init__(self, tacotron2: torch.nn.Module, vocoder: torch.nn.Module, processor, bundle: str,
                 random_init: bool) -> None:
        self.tacotron2 = tacotron2.eval()
        self.vocoder = vocoder.eval() if isinstance(vocoder, torch.nn.Module) else vocoder
        self.processor = processor
        self.bundle = bundle
        self.random_init = random_init
        self.parameters = sum(p.numel() for p in tacotron2.parameters())
        self.vocoder_parameters = (sum(p.numel() for p in vocoder.parameters())
                                   if isinstance(vocoder, torch.nn.Module) else 0)

    @classmethod
    def load(cls, bundle: str = "TACOTRON2_WAVERNN_PHONE_LJSPEECH", random_init: bool = False, *,
             seed: int = 0, max_decoder_steps: int | None = None, griffin_lim_iters: int = 32,
             dl_kwargs: dict | None = None) -> "TacotronTeacher":
        """Load a torchaudio Tacotron 2 bundle by name.

        random_init=False downloads the bundle's weights (needs network). random_init=True builds the same
        Tacotron 2 with random weights (seeded) and a Griffin-Lim vocoder; the text processor is the
        character one, which needs no download (the phoneme bundles' DeepPhonemizer model would). The
        acoustic model then still has the bundle's own symbol table size.
        `max_decoder_steps` caps the decoder (random weights may never emit the stop token).
        """
        source = _bundle(bundle)
        if random_init:
            from torchaudio.models import Tacotron2

            params = _architecture(source, bundle)
            if max_decoder_steps:
                params["decoder_max_step"] = max_decoder_steps
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                tacotron2 = Tacotron2(**params)
            processor = _bundle("TACOTRON2_GRIFFINLIM_CHAR_LJSPEECH").get_text_processor()
            return cls(tacotron2, GriffinLimVocoder(griffin_lim_iters), processor, bundle, True)
        try:
            processor = source.get_text_processor(dl_kwargs=dl_kwargs) if "_PHONE_" in bundle \
                else source.get_text_processor()
            tacotron2 = source.get_tacotron2(dl_kwargs=dl_kwargs)
            vocoder = source.get_vocoder(dl_kwargs=dl_kwargs) if "WAVERNN" in bundle else source.get_vocoder()
        except (OSError, RuntimeError, ImportError) as error:  # URLError is an OSError
            raise TeacherUnavailableError(
                f"could not load {bundle}: torchaudio downloads its weights from download.pytorch.org at run "
                f"time ({type(error).__name__}: {error}). Offline, use TacotronTeacher.load(random_init=True) "
                "for a randomly initialised model of the same architecture.") from error
        if max_decoder_steps:
            tacotron2.decoder.decoder_max_step = max_decoder_steps
        return cls(tacotron2, vocoder, processor, bundle, False)

    # -- modules ---------------------------------------------------------------------------------
    def tokens(self, sentence: str) -> np.ndarray:
        """The bundle's text processor on one (already normalised) sentence."""
        tokens, _ = self.processor(sentence)
        return tokens[0].numpy().astype(np.int64)

    @torch.inference_mode()
    def acoustic(self, tokens: np.ndarray) -> np.ndarray:
        """Tacotron 2 alone: tokens [N] -> natural-log mel [80, frames]."""
        x = torch.as_tensor(np.asarray(tokens), dtype=torch.long)[None]
        with warnings.catch_warnings():
            if self.random_init:  # random weights rarely emit the stop token; hitting the cap is expected
                warnings.filterwarnings("ignore", "Reached max decoder steps")
            mel, lengths, _ = self.tacotron2.infer(x, torch.tensor([x.shape[1]]))
        return mel[0, :, : int(lengths[0])].float().numpy()

    @torch.inference_mode()
    def decode(self, mel: np.ndarray) -> np.ndarray:
        """The vocoder alone: natural-log mel [80, frames] -> audio."""
        m = torch.as_tensor(np.asarray(mel), dtype=torch.float32)[None]
        if m.shape[-1] == 0:  # the decoder stopped at once
            return np.zeros(0, dtype=np.float32)
        audio, _ = self.vocoder(m, torch.tensor([m.shape[-1]]))
        return audio[0].float().numpy()

    def synthesize(self, text: str, seed: int | None = None) -> TacotronOutput:
        """Validated text (TextError for bad input) -> mel and audio, sentence by sentence."""
        timings = {"text": 0.0, "acoustic": 0.0, "vocoder": 0.0}
        start = time.perf_counter()
        sentences = split_sentences(validate(text))
        timings["text"] += time.perf_counter() - start
        tokens, mels, audios = [], [], []
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            for sentence in sentences:
                start = time.perf_counter()
                ids = self.tokens(sentence)
                timings["text"] += time.perf_counter() - start
                if ids.size == 0:
                    raise TextError(f"Nothing in {sentence!r} can be read by {self.bundle} (English letters only).")
                start = time.perf_counter()
                mel = self.acoustic(ids)
                timings["acoustic"] += time.perf_counter() - start
                start = time.perf_counter()
                audio = self.decode(mel)
                timings["vocoder"] += time.perf_counter() - start
                tokens.append(ids), mels.append(mel), audios.append(audio)
        return TacotronOutput(np.concatenate(tokens), np.concatenate(mels, axis=1), np.concatenate(audios),
                              len(sentences), timings)
