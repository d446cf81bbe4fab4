"""Ground truth y: LJSpeech-style datasets, alignment to the teacher, and the full KD loss with alpha.

The "recordings" are the teacher's own readings at sampling temperature 1 and length scale 1.4 (a
different reading of the same text, so y differs measurably from T(x)), written at 44.1 kHz stereo
so the loader must resample and mix down."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from kdtts.align import align_durations
from kdtts.audio import resample
from kdtts.distill.config import DistillConfig
from kdtts.distill.recordings import DatasetError, read_dataset
from kdtts.voice import Scales

TEXTS = ["The cat sat on the mat.", "A bird sang in the tall tree.", "We walked to the market at noon.",
         "The river runs past the old mill.", "She opened the window to let in the air.",
         "He read the long letter twice.", "Bright stars filled the evening sky.", "Two dogs ran along the beach."]
STRETCH = 1.4


def _speakable(teacher):
    from kdtts.text import TextError

    def check(text: str) -> bool:
        try:
            return bool(teacher.phonemizer(text))
        except TextError:
            return False
    return check


@pytest.fixture(scope="module")
def dataset(teacher, tmp_path_factory):
    folder = tmp_path_factory.mktemp("recordings")
    (folder / "wavs").mkdir()
    scales = Scales(teacher.default_scales.noise, STRETCH, teacher.default_scales.noise_w)
    lines = []
    for i, text in enumerate(TEXTS):
        audio = teacher.full(np.asarray(teacher.phonemizer.ids(text)), scales).audio
        audio = np.pad(resample(audio, 22050, 44100), (4410, 4410))          # with silence to trim
        sf.write(str(folder / "wavs" / f"clip{i}.wav"), np.stack([audio, 0.5 * audio], axis=1), 44100)
        lines.append(f"clip{i}|{text}")
    lines.insert(3, "missing7|This clip has no file.")                       # the deliberately broken line
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_dataset_is_read_resampled_trimmed_and_its_broken_line_named(dataset, teacher):
    data = read_dataset(dataset, teacher.spec, _speakable(teacher))
    assert [c.id for c in data.clips] == [f"clip{i}" for i in range(len(TEXTS))]
    assert data.skipped == ["metadata.csv line 4: wavs/missing7.wav is missing"]
    clip = data.clips[0]
    assert clip.audio.ndim == 1 and clip.audio.dtype == np.float32
    # 0.1 s of digital silence was padded at each end; the trim keeps at most its 50 ms margin of it
    # (the clip's own length varies: the fixture reads at temperature 1, so length cannot be the test)
    sound = np.flatnonzero(np.abs(clip.audio) > 1e-6)
    rate = teacher.spec.sample_rate
    assert sound[0] <= 0.06 * rate and len(clip.audio) - 1 - sound[-1] <= 0.06 * rate


@pytest.mark.parametrize("make, cause", [
    (lambda f: (f / "metadata.csv").write_text("a|Hello there.\n"), "0 usable clips (metadata.csv line 1: wavs/a.wav is missing)"),
    (lambda f: (sf.write(str(f / "wavs" / "a.wav"), np.zeros(22050), 22050),
                (f / "metadata.csv").write_text("a|Hello there.\n")), "a.wav is empty or silent"),
    (lambda f: (f / "metadata.csv").write_bytes("a|caf\xe9\n".encode("latin-1")), "not UTF-8"),
    (lambda f: None, "no metadata.csv"),
])
def test_bad_datasets_are_one_line_errors_naming_the_cause(teacher, tmp_path, make, cause):
    (tmp_path / "wavs").mkdir()
    make(tmp_path)
    with pytest.raises(DatasetError) as error:
        read_dataset(tmp_path, teacher.spec, _speakable(teacher))
    assert cause in str(error.value) and "\n" not in str(error.value)


def test_alignment_recovers_a_known_time_stretch(teacher):
    det = teacher.default_scales.deterministic()
    for text in TEXTS[:4]:
        ids = np.asarray(teacher.phonemizer.ids(text))
        reference = teacher.full(ids, det)
        stretched = teacher.full(ids, Scales(0.0, STRETCH, 0.0))
        durations, cost = align_durations(reference.audio, reference.durations, stretched.audio, teacher.spec)
        assert durations.sum() == len(stretched.audio) // teacher.spec.hop_length
        # the stretch is recovered where it happens: each half of the sentence within 5 % of the truth
        half = len(ids) // 2
        for part in (slice(0, half), slice(half, None)):
            recovered = durations[part].sum() / reference.durations[part].sum()
            true = stretched.durations[part].sum() / reference.durations[part].sum()  # ceil() makes it differ from STRETCH
            assert abs(recovered / true - 1) < 0.05, (text, recovered, true)
        assert np.abs(durations - stretched.durations).mean() < 1.0 and cost < 0.8   # under a frame a phoneme


def _length_ratio_to_recordings(student, utts) -> float:
    predicted = sum(int(student.durations(u.ids.numpy(), Scales()).sum()) for u in utts)
    return predicted / sum(int(u.durations.sum()) for u in utts)


def test_alpha_moves_durations_between_teacher_and_recordings(dataset, teacher, tmp_path):
    """alpha = 0 learns the recordings' (slower) timing, alpha = 1 the teacher's, 0.5 in between."""
    from kdtts.distill.data import load_cache
    from kdtts.distill.train import distill
    from kdtts.student.checkpoint import SHIPPED_STUDENT, load_student

    ratios = {}
    for alpha in (0.0, 0.5, 1.0):
        cfg = DistillConfig(cache_dir=str(tmp_path / "cache"), data=str(dataset), alpha=alpha, init=str(SHIPPED_STUDENT),
                            modules=["duration"], max_steps=300, batch_utts=8, lr=3e-3, lr_min=1e-3, warmup_steps=5,
                            validation_utts=1, checkpoint_every=100, sample_every=10_000)
        student = load_student(distill(cfg, tmp_path / f"alpha{alpha}", progress=False, teacher=teacher))
        assert student.info["alpha"] == alpha
        utts = load_cache(next((tmp_path / "cache" / "recordings").iterdir()))
        ratios[alpha] = _length_ratio_to_recordings(student, utts)
    assert ratios[0.0] > ratios[0.5] > ratios[1.0], ratios           # toward y's timing as alpha falls
    assert abs(ratios[0.0] - 1) < abs(ratios[1.0] - 1), ratios
    loss_header = (tmp_path / "alpha0.5" / "loss.csv").read_text().splitlines()[0]
    assert "gt_duration" in loss_header and "kd_duration" in loss_header


def _zip(folder, path, extra: dict | None = None):
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.write(folder / "metadata.csv", "my-voice/metadata.csv")
        for wav in sorted((folder / "wavs").glob("*.wav")):
            zf.write(wav, f"my-voice/wavs/{wav.name}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def test_uploaded_zip_keeps_only_the_dataset_and_refuses_unsafe_entries(dataset, tmp_path):
    from kdtts.ui import uploads

    folder = uploads.from_zip(_zip(dataset, tmp_path / "ok.zip", {"../escape.txt": "x", "my-voice/notes.md": "x",
                                                                   "wavs/../../up.wav": "x"}), tmp_path / "data")
    assert folder.is_relative_to(tmp_path / "data") and (folder / "metadata.csv").exists()
    assert sorted(p.name for p in (folder / "wavs").iterdir()) == [f"clip{i}.wav" for i in range(len(TEXTS))]
    assert not (tmp_path / "escape.txt").exists() and not list(tmp_path.rglob("notes.md"))
    with pytest.raises(DatasetError, match="characters"):
        uploads.from_zip(_zip(dataset, tmp_path / "bad.zip", {"my-voice/wavs/a b;rm.wav": "x"}), tmp_path / "data")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable zip"):
        uploads.from_zip(tmp_path / "junk.zip", tmp_path / "data")


def test_a_finetune_with_recordings_trains_at_alpha_half_and_forgets_them(dataset, teacher, tmp_path):
    from kdtts.distill.finetune import Finetuner, FinetuneRequest
    from kdtts.student.checkpoint import SHIPPED_STUDENT, load_student
    from kdtts.ui import uploads

    folder = uploads.from_zip(_zip(dataset, tmp_path / "voice.zip"), tmp_path / "data")
    jobs = Finetuner(teacher, tmp_path / "data", lambda: {"shipped": SHIPPED_STUDENT})
    with pytest.raises(ValueError, match="recordings"):
        jobs.start(FinetuneRequest(steps=2, alpha=0.5))
    job = jobs.start(FinetuneRequest(name="my-voice", steps=3, alpha=0.5, base="shipped", recordings=str(folder)))
    jobs.wait(120)
    assert job.status == "done", job.message
    student = load_student(job.checkpoint)
    assert student.info["alpha"] == 0.5 and student.info["recordings"] == len(TEXTS)
    assert "gt_decoder" in job.rows[-1] and "kd_decoder" in job.rows[-1]
    assert not folder.exists() and not list((tmp_path / "data" / "finetune_cache").glob("user-*"))
