"""A public Space's hostile visitor: checkpoints, memory, private files, quotas (offline, bounded)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from kdtts.student.checkpoint import FORMAT, CheckpointError, load_student, save_student
from kdtts.student.model import StudentTTS
from kdtts.student.modules import StudentConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = {"duration_channels": 8, "front_channels": 8, "front_phoneme_layers": 1, "front_frame_layers": 1,
        "decoder_channels": 8, "decoder_layers": 1}


def _header_file(path: Path, config: object, tensors: dict | None = None, raw_config: str | None = None) -> Path:
    tensors = tensors if tensors is not None else {"x": torch.zeros(1)}
    meta = {"format": FORMAT, "config": raw_config if raw_config is not None else json.dumps(config), "info": "{}"}
    save_file(tensors, str(path), metadata=meta)
    return path


def _hostile(tmp: Path) -> dict[str, Path]:
    good = save_student(StudentTTS(StudentConfig(**TINY)), tmp / "good.safetensors")
    nan = StudentTTS(StudentConfig(**TINY))
    with torch.no_grad():
        nan.decoder.head.weight[0, 0] = float("nan")
    pickled = tmp / "pickle.safetensors"
    pickled.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    truncated = tmp / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 3])
    wrong_shape = StudentTTS(StudentConfig(**TINY)).state_dict()
    wrong_shape["decoder.head.weight"] = torch.zeros(3, 3)
    return {
        "huge": _header_file(tmp / "huge.safetensors", {**TINY, "n_symbols": 100_000 * 256}),
        "huge_channels": _header_file(tmp / "wide.safetensors", {**TINY, "decoder_channels": 10**7}),
        "negative": _header_file(tmp / "negative.safetensors", {**TINY, "front_channels": -96}),
        "float": _header_file(tmp / "float.safetensors", {**TINY, "decoder_layers": 2.5}),
        "boolean": _header_file(tmp / "bool.safetensors", {**TINY, "decoder_mult": True}),
        "bad_json": _header_file(tmp / "badjson.safetensors", None, raw_config="{not json"),
        "not_object": _header_file(tmp / "list.safetensors", [1, 2]),
        "wrong_shape": _header_file(tmp / "shape.safetensors", TINY, {k: v.contiguous() for k, v in wrong_shape.items()}),
        "nan": save_student(nan, tmp / "nan.safetensors", half=False),
        "pickle": pickled,
        "truncated": truncated,
    }


def _reset_peak() -> float:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(field + ":"))


def test_hostile_checkpoints_are_refused_fast_small_and_by_name(tmp_path):
    for kind, path in _hostile(tmp_path).items():
        idle, start = _reset_peak(), time.perf_counter()
        with pytest.raises(CheckpointError) as error:
            load_student(path)
        assert time.perf_counter() - start < 5, kind
        assert _status_mb("VmHWM") - idle < 300, kind
        assert path.name in str(error.value), (kind, str(error.value))
        assert "Traceback" not in str(error.value)


def test_a_good_tiny_checkpoint_still_loads(tmp_path):
    path = save_student(StudentTTS(StudentConfig(**TINY)), tmp_path / "ok.safetensors")
    assert load_student(path).config.decoder_channels == 8


@pytest.mark.parametrize("model", ["student", "teacher"])
def test_worst_accepted_text_stays_within_the_memory_bound(model):
    """2,000 characters with no sentence end, at the largest length scale: < 1.5 GB above the idle app."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "kdtts.evaluate.memory", model, "--worst-text", "--threads", "1"],
                         capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["characters"] >= 1990 and report["passes"] > 5      # read in bounded pieces
    assert report["audio_seconds"] > 120                               # all of it was read
    assert report["request_peak_mb"] < 1536, report


def test_unwritable_data_dir_fails_before_loading_with_advice(tmp_path, monkeypatch):
    from kdtts.ui import settings

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("KDTTS_DATA_DIR", str(blocker / "data"))   # cannot exist: its parent is a file
    with pytest.raises(settings.SettingsError, match="KDTTS_DATA_DIR"):
        settings.data_dir()


@pytest.mark.parametrize("env, expected", [
    ({}, "127.0.0.1"),                                           # a laptop: not open to the local network
    ({"SPACE_ID": "someone/kdtts"}, "0.0.0.0"),                  # a Space: its proxy must reach the app
    ({"GRADIO_SERVER_NAME": "192.168.1.5", "SPACE_ID": "x"}, "192.168.1.5"),  # said explicitly: as said
])
def test_server_binds_loopback_unless_told_or_on_a_space(env, expected, monkeypatch):
    from kdtts.ui import settings

    for name in ("GRADIO_SERVER_NAME", "SPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert settings.server_name() == expected


def test_rate_limiter_counts_per_visitor():
    from kdtts.ui.limits import RateLimiter

    limit = RateLimiter(2, 60, "votes")
    limit.hit("a")
    limit.hit("a")
    limit.hit("b")
    with pytest.raises(ValueError, match="at most 2 every 1 min"):
        limit.hit("a")



class _Request:
    def __init__(self, forwarded: str | None, peer: str = "10.0.0.7") -> None:
        self.headers = {"x-forwarded-for": forwarded} if forwarded is not None else {}
        self.client = type("Client", (), {"host": peer})()


def test_a_visitor_is_the_peer_unless_a_proxy_is_trusted_and_then_the_hop_it_appended(monkeypatch):
    from kdtts.ui.limits import visitor

    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("KDTTS_TRUSTED_PROXIES", raising=False)
    forged = _Request("1.2.3.4")  # a client that writes its own header
    assert visitor(forged) == "10.0.0.7" and visitor(None) == "local"
    # a Space's proxy appends the address it saw: the last hop; whatever the client wrote stays to its left
    monkeypatch.setenv("SPACE_ID", "someone/kdtts")
    assert visitor(_Request("1.2.3.4, 203.0.113.9")) == "203.0.113.9"
    assert visitor(_Request("203.0.113.9")) == "203.0.113.9"
    assert visitor(_Request(None)) == "10.0.0.7"
    monkeypatch.setenv("KDTTS_TRUSTED_PROXIES", "2")  # two proxies: the second hop from the right
    assert visitor(_Request("1.2.3.4, 203.0.113.9, 10.1.1.1")) == "203.0.113.9"
    assert visitor(_Request("203.0.113.9")) == "10.0.0.7"  # fewer hops than trusted proxies: the peer
    monkeypatch.setenv("KDTTS_TRUSTED_PROXIES", "0")
    assert visitor(_Request("1.2.3.4, 203.0.113.9")) == "10.0.0.7"


def test_ten_forged_headers_are_one_visitor_with_one_quota(monkeypatch):
    from kdtts.ui.limits import RateLimiter, visitor

    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("KDTTS_TRUSTED_PROXIES", raising=False)
    limit, accepted = RateLimiter(6, 60, "votes"), 0
    for i in range(16):
        try:
            limit.hit(visitor(_Request(f"198.51.100.{i}")))
            accepted += 1
        except ValueError:
            pass
    assert accepted == 6
    limit.check("someone-else")  # check() counts nothing
    limit.check("someone-else")
    assert len(limit._events["someone-else"]) == 0


def test_restart_removes_orphans_and_old_checkpoints_are_evicted(teacher, tmp_path, random_student_path):
    from kdtts.distill.publish import evict_oldest
    from kdtts.ui.finetune import FinetuneManager
    from kdtts.ui.service import Service

    data = tmp_path / "data"
    (data / "finetune_runs" / "20260101-000000").mkdir(parents=True)   # a job killed with the process
    (data / "finetune_cache" / "user-abc").mkdir(parents=True)         # a visitor's text, read by the teacher
    (data / "finetune_cache" / "builtin").mkdir(parents=True)
    service = Service(teacher, random_student_path, data)
    FinetuneManager(service)
    assert not (data / "finetune_runs").exists() and not (data / "finetune_cache" / "user-abc").exists()
    assert (data / "finetune_cache" / "builtin").exists()
    for i in range(4):
        path = service.checkpoint_dir / f"ft{i}.safetensors"
        path.write_bytes(random_student_path.read_bytes())
        os.utime(path, (1000 + i, 1000 + i))
    assert evict_oldest(service.checkpoint_dir, 2) == ["ft1", "ft0"]
    from kdtts.student.header import shipped_tiers  # offered beside the default, never evicted

    assert sorted(service.checkpoints()) == sorted([service.default_name, *shipped_tiers(), "ft3", "ft2"])
    assert random_student_path.exists()


def test_a_fresh_student_job_does_not_start_from_the_shipped_student(teacher, tmp_path):
    from kdtts.distill.finetune import Finetuner, FinetuneRequest
    from kdtts.student.checkpoint import SHIPPED_STUDENT

    text = ("The cat sat on the mat.\nA bird sang in the tall tree.\nWe walked to the market at noon.\n"
            "The river runs past the old mill.\nShe opened the window.\nHe read the letter twice.")
    jobs = Finetuner(teacher, tmp_path, lambda: {"shipped": SHIPPED_STUDENT})
    first_loss = {}
    for base in ("shipped", None):
        job = jobs.start(FinetuneRequest(name=f"from-{base}", steps=2, modules=("decoder",), text=text, base=base))
        jobs.wait(120)
        assert job.status == "done", job.message
        first_loss[base] = job.rows[0]["loss"]
    assert first_loss[None] > 2 * first_loss["shipped"], first_loss


def test_from_scratch_preset_trains_a_small_decoder_and_keeps_samples_to_listen_to(teacher, tmp_path):
    import soundfile as sf

    from kdtts.distill.finetune import Finetuner, FinetuneRequest
    from kdtts.distill.finetune_request import SCRATCH_DECODER

    text = ("The cat sat on the mat.\nA bird sang in the tall tree.\nWe walked to the market at noon.\n"
            "The river runs past the old mill.\nShe opened the window.\nHe read the letter twice.")
    jobs = Finetuner(teacher, tmp_path, lambda: {})
    job = jobs.start(FinetuneRequest(name="scratch", steps=6, lr=2e-3, modules=("decoder",), text=text,
                                     student=SCRATCH_DECODER, sample_every=2))
    jobs.wait(120)
    assert job.status == "done", job.message
    assert [step for step, _ in job.samples] == [2, 4, 6]
    for _, path in job.samples:  # kept after the run folder is gone, for the page to play
        audio, rate = sf.read(str(path))
        assert rate == 22050 and len(audio) > 1000
    assert load_student(job.checkpoint).config.decoder_channels == 64


def test_finetunes_queue_one_per_visitor_and_owners_cancel_their_own(teacher, tmp_path):
    from kdtts.distill.finetune import Busy, Finetuner, FinetuneRequest
    from kdtts.student.checkpoint import SHIPPED_STUDENT

    text = "The cat sat on the mat.\nA bird sang in the tall tree.\nWe walked to the market at noon."
    jobs = Finetuner(teacher, tmp_path, lambda: {"shipped": SHIPPED_STUDENT})
    request = dict(modules=("duration",), text=text, base="shipped")
    first = jobs.start(FinetuneRequest(name="a", steps=2000, **request), owner="a")
    second = jobs.start(FinetuneRequest(name="b", steps=2, **request), owner="b")
    third = jobs.start(FinetuneRequest(name="c", steps=2, **request), owner="c")
    assert (second.status, third.status) == ("queued", "queued")
    assert jobs.position(second.secret) == 1 and jobs.position(third.secret) == 2 and jobs.position("x") is None
    with pytest.raises(Busy, match="one at a time per visitor"):
        jobs.start(FinetuneRequest(name="a2", steps=2, **request), owner="a")
    assert jobs.cancel(third.secret) and third.status == "cancelled" and jobs.position(second.secret) == 1
    with pytest.raises(ValueError, match="owner key"):
        jobs.cancel(second.secret[::-1])
    assert jobs.cancel(first.secret)           # the running one: the next in line starts
    jobs.wait(120)
    assert first.status == "cancelled" and second.status == "done", (first.message, second.message)
    assert jobs.state()["waiting"] == 0


# -- round two: costs by audio, a fair blind test, salted raters, checkpoints refused from their header ---------
def test_a_5_mb_text_is_refused_before_it_is_cleaned():
    from kdtts.text import TextError, validate

    start = time.perf_counter()
    with pytest.raises(TextError, match="limit is 2,000"):
        validate("word " * 1_000_000)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("text, length, cause", [("^" * 2000, 2.0, "phonemes"), ("9" * 1999, 1.0, "phonemes"),
                                                 ("^ " * 170, 2.0, "s of audio")])
def test_requests_are_priced_in_phonemes_and_seconds_before_a_slot(teacher, tmp_path, random_student_path,
                                                                   text, length, cause):
    from dataclasses import replace

    from kdtts.engine import Mix
    from kdtts.text import TextError
    from kdtts.ui.service import Service

    service = Service(teacher, random_student_path, tmp_path)
    scales = replace(teacher.default_scales, length=length)
    slots = service._slots["student"]
    taken = []
    service.slot = lambda mix: taken.append(mix) or slots  # noqa: E731 - a slot that records its use
    with pytest.raises(TextError, match=cause):
        service.synthesize(service.engine(), text, Mix.of("student"), scales)
    assert taken == []  # refused before a synthesis slot was taken


def test_the_longest_ordinary_text_at_the_slowest_rate_is_accepted(teacher, tmp_path, random_student_path):
    from dataclasses import replace

    from kdtts.evaluate.memory import worst_text
    from kdtts.ui.service import Service

    service = Service(teacher, random_student_path, tmp_path)
    service.admit(worst_text(), replace(teacher.default_scales, length=2.0))  # 2,000 characters: no error


def test_a_blind_prompt_is_refused_in_any_spelling_and_inside_a_longer_text(teacher, tmp_path, random_student_path):
    from kdtts.text import TextError
    from kdtts.ui.listening import Listening
    from kdtts.ui.service import Service
    from kdtts.ui.votes import VoteStore

    service = Service(teacher, random_student_path, tmp_path)
    prompt = "The old lighthouse keeper counted seven ships at dawn."
    Listening(service, VoteStore(tmp_path / "votes.sqlite"), [prompt])
    for text in (prompt, prompt.upper().replace(" ", "  ").rstrip("."), f"Hello there. {prompt} Goodbye."):
        with pytest.raises(TextError, match="blind test"):
            service.admit(text)
    service.admit("The old lighthouse keeper counted eight ships at dusk.")
    service.admit("Yes.")


def test_blind_clips_are_loudness_matched_within_half_a_lu(teacher, tmp_path, random_student_path):
    import soundfile as sf

    from kdtts.audio import LOUDNESS_TARGET, integrated_loudness
    from kdtts.ui.listening import GRIFFINLIM, TEACHER, Listening
    from kdtts.ui.service import Service
    from kdtts.ui.votes import GOLD, VoteStore

    service = Service(teacher, random_student_path, tmp_path)
    listening = Listening(service, VoteStore(tmp_path / "votes.sqlite"), ["A short prompt for a fair comparison."])
    student = next(s for s in listening.systems() if s.startswith("student:"))
    levels = {}
    for system in (TEACHER, student, GRIFFINLIM, GOLD):
        audio, rate = sf.read(listening.served_copy(listening.audio(system, 0)), dtype="float32")
        levels[system] = integrated_loudness(audio, rate)
    assert all(abs(level - LOUDNESS_TARGET) <= 0.5 for level in levels.values()), levels


def test_rater_ids_are_salted_and_the_secret_is_private(tmp_path, monkeypatch):
    from kdtts.ui import settings
    from kdtts.ui.listen import rater_id

    monkeypatch.delenv("KDTTS_SECRET", raising=False)
    secret = settings.secret(tmp_path)
    assert len(secret) == 32 and settings.secret(tmp_path) == secret
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert rater_id(secret, "page:203.0.113.9:abc") != rater_id(b"another deployment", "page:203.0.113.9:abc")
    import hashlib

    assert rater_id(secret, "x") not in (hashlib.sha1(b"x").hexdigest()[:16], hashlib.sha256(b"x").hexdigest()[:16])
    monkeypatch.setenv("KDTTS_SECRET", "from-the-environment")
    assert settings.secret(tmp_path) == b"from-the-environment"


def test_signed_in_votes_are_the_leaderboard_and_anonymous_ones_kept_apart(tmp_path):
    from kdtts.ui.votes import Vote, VoteStore, split_markdown

    store = VoteStore(tmp_path / "votes.sqlite")
    store.add(Vote(0, "x", "teacher", "student", "A", rater="r1", signed_in=True))
    for i in range(3):
        store.add(Vote(0, "x", "teacher", "student", "B", rater=f"anon{i}"))
    rows = store.rows()
    assert [r["signed_in"] for r in rows] == [1, 0, 0, 0]
    shown = split_markdown(rows)
    public, anonymous = shown.split("Anonymous votes")
    assert "**1 votes.**" in public and "**3 votes.**" in anonymous


def test_a_1_gb_file_is_refused_from_its_header_without_being_read(tmp_path):
    good = save_student(StudentTTS(StudentConfig(**TINY)), tmp_path / "good.safetensors")
    junk = tmp_path / "junk.safetensors"
    with junk.open("wb") as f:  # sparse: 1 GB on paper, nothing on disk
        f.write(os.urandom(64))
        f.truncate(2**30)
    appended = tmp_path / "appended.safetensors"
    with appended.open("wb") as f:
        f.write(good.read_bytes())
        f.truncate(2**30)
    for path, cause in ((junk, "header length"), (appended, "data appended")):
        idle, start = _reset_peak(), time.perf_counter()
        with pytest.raises(CheckpointError, match=cause):
            load_student(path)
        assert time.perf_counter() - start < 1 and _status_mb("VmHWM") - idle < 50, path.name


def test_a_long_z_is_decoded_in_windows_that_match_one_pass(teacher):
    from dataclasses import replace

    from kdtts.teachers.piper import DECODE_CONTEXT, DECODE_WINDOW

    ids = np.asarray(teacher.phonemizer.ids("The old lighthouse keeper counted seven ships at dawn, and then he "
                                            "wrote every one of them down in a long and dusty book."))
    scales = replace(teacher.default_scales.deterministic(), length=2.0)
    z = teacher.latent(ids, teacher.durations(ids, scales), scales)
    assert z.shape[1] > DECODE_WINDOW + 2 * DECODE_CONTEXT  # the windowed path
    windowed, whole = teacher.decode(z), teacher._decode(np.asarray(z, dtype=np.float32))
    assert windowed.shape == whole.shape and np.abs(windowed - whole).max() < 1e-5
