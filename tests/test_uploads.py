"""Uploads priced before they are decoded, nothing left behind when one fails, the data directory's
budget and sweeps (offline; the live path is in test_ui_live and benchmarks/attack.py)."""
from __future__ import annotations

import io
import os
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kdtts.distill.recordings import DatasetError
from kdtts.ui import uploads
from kdtts.ui.storage import DataBudget, StorageFull


def _peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def _reset_peak() -> float:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")
    return _peak_mb()


def _u8_wav_header(rate: int, frames: int) -> bytes:
    """A RIFF header for 8-bit mono PCM (silence is byte 0x80)."""
    return (b"RIFF" + struct.pack("<I", 36 + frames) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8)
            + b"data" + struct.pack("<I", frames))


def _silent_zip(path: Path, rate: int, seconds: float, text: str = "Hello there, this is a clip.") -> Path:
    """A real zip holding a long silent 8-bit WAV: a few hundred KB that unpack to up to 200 MB."""
    frames = int(rate * seconds)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.csv", f"long|{text}\n")
        with zf.open("wavs/long.wav", "w", force_zip64=True) as f:
            f.write(_u8_wav_header(rate, frames))
            block = b"\x80" * (1 << 20)
            for start in range(0, frames, len(block)):
                f.write(block[:min(len(block), frames - start)])
    return path


def _speech_wav(seconds: float = 1.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _uploads(root: Path) -> list[Path]:
    return list((root / "finetune_uploads").glob("*")) if (root / "finetune_uploads").exists() else []


@pytest.mark.parametrize("rate, seconds, cause", [(4000, 36_000, "unpacks to 137 MB"), (4000, 120, "4000 Hz"),
                                                  (8000, 600, "600 s long")])
def test_a_long_silent_wav_is_refused_from_its_header_small_and_leaves_nothing(tmp_path, rate, seconds, cause):
    archive = _silent_zip(tmp_path / "long.zip", rate, seconds)
    assert archive.stat().st_size < 500_000
    idle = _reset_peak()
    start = time.perf_counter()
    with pytest.raises(DatasetError, match=cause):
        uploads.from_zip(archive, tmp_path / "data")
    assert _peak_mb() - idle < 100, "the clip was decoded"
    assert time.perf_counter() - start < 20
    assert _uploads(tmp_path / "data") == []


def test_a_damaged_second_entry_removes_the_first(tmp_path):
    archive = tmp_path / "crc.zip"
    good = _speech_wav()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.csv", "a|Hello there.\nb|Good morning to you.\n")
        zf.writestr("wavs/a.wav", good)
        zf.writestr("wavs/b.wav", good)
    raw = bytearray(archive.read_bytes())
    second = raw.rindex(good[:64])  # wavs/b.wav's stored bytes: flip one in its middle, keep the CRC
    raw[second + len(good) // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="damaged"):
        uploads.from_zip(archive, tmp_path / "data")
    assert _uploads(tmp_path / "data") == []


def test_an_entry_that_runs_past_its_budget_is_stopped_there():
    read = []

    class Endless(io.RawIOBase):
        def read(self, n=-1):
            read.append(n)
            return b"\0" * (1 << 20)

    with pytest.raises(DatasetError, match="more than it declares"):
        uploads._copy(Endless(), io.BytesIO(), 3 * 2**20, "wavs/x.wav")
    assert len(read) == 4  # stopped at the first block past the budget


def test_no_room_in_the_budget_refuses_before_anything_is_written(tmp_path):
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("metadata.csv", "a|Hello there.\n")
        zf.writestr("wavs/a.wav", _speech_wav())
    data = tmp_path / "data"
    data.mkdir()
    (data / "votes.sqlite").write_bytes(b"\0" * 60_000)
    with pytest.raises(StorageFull, match="no room"):
        uploads.from_zip(archive, data, DataBudget(data, 80_000))
    assert _uploads(data) == []
    assert uploads.from_zip(archive, data, DataBudget(data, 2**20)).exists()


def test_takes_are_checked_by_their_headers_and_removed_when_refused(tmp_path):
    short = tmp_path / "short.wav"
    short.write_bytes(_speech_wav(1.0))
    long = tmp_path / "long.wav"
    long.write_bytes(_speech_wav(31.0, rate=8000))
    with pytest.raises(DatasetError, match="31 s long"):
        uploads.from_takes([str(short), str(long), None], tmp_path / "data")
    assert _uploads(tmp_path / "data") == []
    folder = uploads.from_takes([str(short), str(short), None], tmp_path / "data")
    assert sorted(p.name for p in (folder / "wavs").iterdir()) == ["take0.wav", "take1.wav"]


def test_too_much_audio_in_all_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_UPLOAD_SECONDS", 2.5)
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("metadata.csv", "".join(f"c{i}|Clip number {i}.\n" for i in range(3)))
        for i in range(3):
            zf.writestr(f"wavs/c{i}.wav", _speech_wav(1.0))
    with pytest.raises(DatasetError, match="at most"):
        uploads.from_zip(archive, tmp_path / "data")
    assert _uploads(tmp_path / "data") == []


def test_a_long_text_line_is_read_in_bounded_passes_and_stopped(teacher, tmp_path):
    from kdtts.distill.data import build_recordings_cache
    from kdtts.distill.recordings import Clip
    from kdtts.text import MAX_CHUNK_IDS

    speech = teacher.full(np.asarray(teacher.phonemizer.ids("The cat sat on the mat.")), teacher.default_scales).audio
    words = "and the river ran on past the mill "
    long_text = (words * 60)[:1999]
    passes = []
    full = teacher.full

    class Spy:
        def __getattr__(self, name):
            return getattr(teacher, name)

        def full(self, ids, scales=None):
            passes.append(len(ids))
            return full(ids, scales)

    report = build_recordings_cache(tmp_path / "cache", [Clip("long", long_text, speech), Clip("ok", "The cat sat on the mat.", speech)],
                                    Spy(), max_cost=10.0, progress=False)
    assert report["skipped_text_too_long"] == 1 and report["aligned"] == 1
    assert max(passes) <= MAX_CHUNK_IDS + 3  # a piece of 200 phonemes, pads and its start and end ids
    assert len(passes) <= 4, passes  # stopped once the reading outgrew the 1.5 s recording


def test_sweeps_remove_orphans_dead_served_folders_and_idle_caches(teacher, tmp_path):
    from kdtts.distill.finetune import CACHE_IDLE_S, UPLOAD_GRACE_S, Finetuner, FinetuneRequest
    from kdtts.distill.finetune_request import builtin_sentences
    from kdtts.ui.storage import served_folder, sweep_dead_served_folders

    data = tmp_path / "data"
    jobs = Finetuner(teacher, data, lambda: {})
    old = time.time() - max(CACHE_IDLE_S, UPLOAD_GRACE_S) - 10
    orphan, fresh = data / "finetune_uploads" / "orphan", data / "finetune_uploads" / "fresh"
    idle_cache = data / "finetune_cache" / "abc123"
    default = jobs._cache_path(FinetuneRequest(), builtin_sentences(FinetuneRequest().sentences))
    for folder in (orphan, fresh, idle_cache, default):
        folder.mkdir(parents=True)
        (folder / "x.bin").write_bytes(b"\0" * 1000)
    for folder in (orphan, idle_cache, default):
        os.utime(folder, (old, old))
    assert jobs.sweep() == 2000
    assert not orphan.exists() and not idle_cache.exists() and fresh.exists() and default.exists()

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    mine = served_folder(tmp)
    dead = tmp / "kdtts-ui-999999999-abcd"   # no such process
    legacy = tmp / "kdtts-ui-abcd"           # not named by pid: never guessed at
    for folder in (dead, legacy):
        folder.mkdir()
        (folder / "pair.wav").write_bytes(b"\0" * 500)
    assert sweep_dead_served_folders(tmp) == 500
    assert mine.exists() and legacy.exists() and not dead.exists()


def test_a_full_budget_sweeps_first_then_refuses(tmp_path):
    data = tmp_path / "data"
    (data / "stale").mkdir(parents=True)
    (data / "stale" / "x").write_bytes(b"\0" * 5000)
    budget = DataBudget(data, 6000)

    def sweeper(aggressive: bool) -> int:
        from kdtts.ui.storage import remove

        return remove(data / "stale") if aggressive else 0

    budget.sweepers.append(sweeper)
    budget.require(4000, "this")  # the sweep made room
    assert not (data / "stale").exists()
    (data / "kept").write_bytes(b"\0" * 5000)
    with pytest.raises(StorageFull, match="Please try again later"):
        budget.require(4000, "this")
