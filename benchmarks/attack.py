"""Replays the hostile visitor's probes (issue 25) against a live app on 127.0.0.1, and prints, per probe,
the app's peak RSS above its idle level, the data directory's and the served folder's growth, and how many
requests were accepted. Bounded: a few dozen requests, loopback only, a few minutes in all.

    python benchmarks/attack.py      # starts `python app.py` from this tree on a free port, fresh data dir
    python benchmarks/attack.py texts votes   # only some probe groups (see main)

Probes: uploads (a 10-hour 4 kHz WAV, 55 hours at 1 kHz, 140 MB of clips followed by a damaged one, a
1,999-character text line), quotas under forged X-Forwarded-For (votes, fine-tunes), the costliest texts
("^" x 2000 at length 2, "9" x 1999 through Compare, the longest accepted texts, 5 MB texts next to normal
requests), unblinding a pair with one /synthesize call, the pair's loudness, a 1 GB "checkpoint" given to the
CLI, and what a kill -9 leaves for the next start.
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ORDINARY = ("seven quiet rivers wander under amber skies while distant bells ring softly over the hills and "
            "the old town sleeps ")


# -- the app and its measurements -------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(field + ":"))


def _tree_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20 if Path(path).exists() else 0.0


class App:
    def __init__(self, data: Path, extra_env: dict | None = None) -> None:
        self.data, self.port = data, _free_port()
        # the default quotas and no trusted proxy: the app as it ships, off a Space
        env = {k: v for k, v in os.environ.items() if k not in ("SPACE_ID", "KDTTS_TRUSTED_PROXIES",
                                                                "KDTTS_VOTES_PER_MINUTE", "KDTTS_JOBS_PER_HOUR")}
        env.update({"KDTTS_DATA_DIR": str(data), "GRADIO_SERVER_PORT": str(self.port),
                    "GRADIO_ANALYTICS_ENABLED": "False", "KDTTS_PREWARM_FINETUNE": "0", "KDTTS_LISTEN_PROMPTS": "4",
                    "KDTTS_THREADS": "2", "KDTTS_GOLD_RATE": "0", **(extra_env or {})})
        self.log = (data.parent / f"app-{self.port}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/"
        start = time.perf_counter()
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the app exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                break
            except OSError:
                if time.perf_counter() - start > 240:
                    raise SystemExit("the app did not answer in 240 s") from None
                time.sleep(1)

    @property
    def served(self) -> Path:
        return next(Path(tempfile.gettempdir()).glob(f"kdtts-ui-{self.proc.pid}-*"))

    def client(self, forwarded: str | None = None):
        from gradio_client import Client

        return Client(self.url, verbose=False, headers={"X-Forwarded-For": forwarded} if forwarded else None)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Probe:
    """Peak RSS above the level at the start (the kernel's high-water mark, reset first), disk growth."""

    def __init__(self, app: App, name: str) -> None:
        self.app, self.name = app, name

    def __enter__(self) -> dict:
        pid = self.app.proc.pid
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        self.rss, self.data, self.served = _status_mb(pid, "VmRSS"), _tree_mb(self.app.data), _tree_mb(self.app.served)
        self.result: dict = {"probe": self.name}
        self.start = time.perf_counter()
        return self.result

    def __exit__(self, *exc) -> bool:
        pid = self.app.proc.pid
        self.result.update(peak_rss_mb=round(_status_mb(pid, "VmHWM") - self.rss, 1),
                           data_growth_mb=round(_tree_mb(self.app.data) - self.data, 2),
                           served_growth_mb=round(_tree_mb(self.app.served) - self.served, 2),
                           seconds=round(time.perf_counter() - self.start, 1))
        if exc[0] is not None:
            self.result["crashed"] = f"{exc[0].__name__}: {exc[1]}"
        print(json.dumps(self.result), flush=True)
        return True


def _refused(call) -> tuple[bool, str]:
    try:
        call()
    except Exception as error:  # noqa: BLE001 - an AppError is a refusal; its message is reported
        return True, str(error).splitlines()[0][:160]
    return False, ""


# -- the hostile files ---------------------------------------------------------------------------------
def _u8_wav_header(rate: int, frames: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + frames) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8)
            + b"data" + struct.pack("<I", frames))


def silent_zip(path: Path, rate: int, hours: float) -> Path:
    frames = int(rate * hours * 3600)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.csv", "long|A very long and very quiet recording.\n")
        with zf.open("wavs/long.wav", "w", force_zip64=True) as f:
            f.write(_u8_wav_header(rate, frames))
            block = b"\x80" * (1 << 22)
            for start in range(0, frames, len(block)):
                f.write(block[:min(len(block), frames - start)])
    return path


def speech(text: str) -> np.ndarray:
    from kdtts.teachers.piper import PiperTeacher

    teacher = PiperTeacher.load(threads=1)
    return teacher.full(np.asarray(teacher.phonemizer.ids(text)), teacher.default_scales).audio


def wav_bytes(audio: np.ndarray, rate: int = 22050) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def damaged_zip(path: Path, entries: int = 7, entry_mb: int = 20) -> Path:
    """Seven 20 MB clips (deflated to a few hundred KB, 140 MB unpacked), then one whose stored bytes fail their CRC."""
    good = wav_bytes((0.3 * np.sin(np.arange(22050) / 5)).astype(np.float32))
    lines = "".join(f"c{i}|Clip number {i}.\n" for i in range(entries + 1))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.csv", lines)
        for i in range(entries):
            info = zipfile.ZipInfo(f"wavs/c{i}.wav")
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as f:
                frames = entry_mb * 2**20
                f.write(_u8_wav_header(22050, frames))
                block = b"\x80" * (1 << 22)
                for start in range(0, frames, len(block)):
                    f.write(block[:min(len(block), frames - start)])
        zf.writestr(zipfile.ZipInfo(f"wavs/c{entries}.wav"), good)  # stored
    raw = bytearray(path.read_bytes())
    raw[raw.rindex(good[:64]) + len(good) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def long_line_zip(path: Path) -> Path:
    """Two real clips; the first one's text line is 1,999 characters."""
    text = "The cat sat on the mat."
    audio = speech(text)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.csv", f"a|{(ORDINARY * 20)[:1999]}\nb|{text}\nc|{text}\n")
        for name in ("a", "b", "c"):
            zf.writestr(f"wavs/{name}.wav", wav_bytes(audio))
    return path


# -- the probes ------------------------------------------------------------------------------------------
def upload(app: App, name: str, archive: Path, steps: int = 2) -> None:
    from gradio_client import handle_file

    client = app.client()
    with Probe(app, name) as r:
        r["zip_kb"] = round(archive.stat().st_size / 1024)
        refused, r["message"] = _refused(lambda: client.predict(
            name="attack", steps=steps, alpha=0.5, base="shipped", recordings=handle_file(str(archive)),
            api_name="/finetune"))
        r["accepted"] = int(not refused)
        if not refused:  # the job runs (teacher alignment, training): wait for it, RSS is watched meanwhile
            for _ in range(600):
                state = client.predict(api_name="/finetune_status")
                if not state["running"]:
                    break
                time.sleep(1)
            r["job"] = state["status"] + ": " + (state["message"] or "")[:120]
        r["uploads_left"] = len(list((app.data / "finetune_uploads").glob("*")))


def forged_votes(app: App, n: int = 10) -> None:
    """n pairs fetched and played first, then n votes cast within seconds, each under another forged header."""
    with Probe(app, f"votes_forged_xff_x{n}") as r:
        ready = []
        for i in range(n):
            client = app.client(f"198.51.100.{i + 1}")
            token = client.predict(api_name="/next_pair")[0]
            client.predict(token, "A", api_name="/played")
            client.predict(token, "B", api_name="/played")
            ready.append((client, token))
        start, accepted = time.perf_counter(), 0
        for client, token in ready:
            refused, message = _refused(lambda c=client, t=token: c.predict(t, "A", 4, 3, api_name="/vote"))
            accepted += not refused
            r["message"] = message or r.get("message", "")
        r["accepted"], r["attempts"], r["voting_s"] = accepted, n, round(time.perf_counter() - start, 1)


def forged_finetunes(app: App, n: int = 6) -> None:
    with Probe(app, f"finetunes_forged_xff_x{n}") as r:
        accepted, keys = 0, []
        for i in range(n):
            client = app.client(f"203.0.113.{i + 1}")
            try:
                _, key = client.predict(name=f"f{i}", steps=500, api_name="/finetune")
                accepted += 1
                keys.append((client, key))
            except Exception as error:  # noqa: BLE001
                r["message"] = str(error).splitlines()[0][:160]
        r["accepted"], r["attempts"] = accepted, n
        for client, key in keys:
            client.predict(key, api_name="/finetune_cancel")
        client = app.client()
        for _ in range(120):
            if not client.predict(api_name="/finetune_status")["running"]:
                break
            time.sleep(1)


def texts(app: App) -> None:
    client = app.client()
    for name, text, endpoint, length in (("power_x2000_len2", "^" * 2000, "/synthesize", 2.0),
                                         ("nines_x1999_compare", "9" * 1999, "/compare", 1.0)):
        with Probe(app, name) as r:
            args = (text, "student", None, 0.0, length) if endpoint == "/synthesize" else (text, None, 0.0, length)
            refused, r["message"] = _refused(lambda a=args, e=endpoint: client.predict(*a, api_name=e))
            r["accepted"] = int(not refused)
    ordinary = (ORDINARY * 20)[:2000]
    power = "^ " * 148
    shout = "Oh! " * 500
    for name, text in (("ordinary_2000_len2", ordinary), ("power_spaced_len2", power), ("exclaim_2000_len2", shout)):
        for model in ("student", "teacher"):
            with Probe(app, f"{name}_{model}") as r:
                try:
                    path = client.predict(text, model, None, 0.0, 2.0, api_name="/synthesize")
                    r["accepted"], r["audio_s"] = 1, round(sf.info(path).duration, 1)
                except Exception as error:  # noqa: BLE001
                    r["accepted"], r["message"] = 0, str(error).splitlines()[0][:160]


_POST = """
import json, sys, urllib.request
url, text = sys.argv[1], "word " * 1_000_000
body = json.dumps({"data": [text, "student", None, 0.0, 1.0]}).encode()
request = urllib.request.Request(url + "gradio_api/call/synthesize", body, {"Content-Type": "application/json"})
event = json.loads(urllib.request.urlopen(request, timeout=60).read())["event_id"]
reply = urllib.request.urlopen(url + "gradio_api/call/synthesize/" + event, timeout=60).read().decode()
print("refused" if "event: error" in reply else "accepted")
"""


def huge_texts(app: App, clients: int = 4, normal: int = 4) -> None:
    """Four other processes post 5 MB texts while this one times ordinary student requests."""
    with Probe(app, f"text_5mb_x{clients}_beside_{normal}_normal") as r:
        alone = []
        for _ in range(normal):
            start = time.perf_counter()
            app.client().predict("The quick brown fox jumps over the lazy dog.", "student", api_name="/synthesize")
            alone.append(time.perf_counter() - start)
        attackers = [subprocess.Popen([sys.executable, "-c", _POST, app.url], stdout=subprocess.PIPE, text=True)
                     for _ in range(clients)]
        time.sleep(0.3)
        latencies = []
        for _ in range(normal):
            start = time.perf_counter()
            app.client().predict("The quick brown fox jumps over the lazy dog.", "student", api_name="/synthesize")
            latencies.append(time.perf_counter() - start)
        outcomes = [a.communicate(timeout=120)[0].strip() for a in attackers]
        r["refused"], r["attempts"] = outcomes.count("refused"), clients
        r["normal_student_alone_max_s"], r["normal_student_beside_max_s"] = round(max(alone), 2), round(max(latencies), 2)


def blind(app: App, pairs: int = 8) -> None:
    from kdtts.audio import integrated_loudness

    client = app.client()
    with Probe(app, "unblind_with_synthesize") as r:
        token, prompt, *_ = client.predict(api_name="/next_pair")
        text = re.sub(r"^###\s*“|”$", "", prompt.strip())
        refused, r["message"] = _refused(lambda: client.predict(text, "student", api_name="/synthesize"))
        r["accepted"] = int(not refused)
    with Probe(app, f"pair_loudness_x{pairs}") as r:
        offsets, gaps = [], []
        for _ in range(pairs):
            a, b = client.predict(api_name="/next_pair")[2:4]
            levels = [integrated_loudness(*sf.read(p, dtype="float32")) for p in (a, b)]
            offsets += [abs(level + 23) for level in levels]
            gaps.append(abs(levels[0] - levels[1]))
        r["max_lu_from_target"], r["max_lu_between_sides"] = round(max(offsets), 2), round(max(gaps), 2)


def _cli(args: list[str]) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kdtts", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode().strip().splitlines()
    _, status, usage = os.wait4(proc.pid, 0)
    return {"rc": os.waitstatus_to_exitcode(status), "process_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "seconds": round(time.perf_counter() - start, 1), "message": (output or [""])[-1][:120]}


def cli_checkpoint(tmp: Path) -> None:
    """A 1 GB file (sparse) as the CLI's student, beside a missing one (the CLI's own start-up cost)."""
    big = tmp / "big.safetensors"
    with big.open("wb") as f:
        f.write(os.urandom(64))
        f.truncate(2**30)
    synth = ["synth", "--model", "student", "--text", "Hello.", "--out", str(tmp / "x.wav"), "--student"]
    missing, hostile = _cli(synth + [str(tmp / "missing.safetensors")]), _cli(synth + [str(big)])
    print(json.dumps({"probe": "cli_1gb_checkpoint", **hostile,
                      "above_a_missing_checkpoint_mb": round(hostile["process_peak_rss_mb"]
                                                            - missing["process_peak_rss_mb"], 1)}), flush=True)


def kill9(app: App, archive: Path, tmp: Path) -> None:
    """A fine-tune with recordings is running when the app is killed; the next start sweeps what it left."""
    from gradio_client import handle_file

    client = app.client()
    client.predict(name="killed", steps=1000, alpha=0.5, base="shipped", recordings=handle_file(str(archive)),
                   api_name="/finetune")
    time.sleep(8)
    served = app.served
    client.predict("A served file before the kill.", "student", api_name="/synthesize")
    left = {"uploads_mb": _tree_mb(app.data / "finetune_uploads"), "served_mb": _tree_mb(served),
            "runs_mb": _tree_mb(app.data / "finetune_runs")}
    os.kill(app.proc.pid, signal.SIGKILL)
    app.proc.wait()
    app.log.close()
    again = App(app.data)
    try:
        time.sleep(5)
        after = {"uploads_mb": _tree_mb(app.data / "finetune_uploads"), "served_mb": _tree_mb(served),
                 "runs_mb": _tree_mb(app.data / "finetune_runs")}
        print(json.dumps({"probe": "kill9_then_restart", "left_by_kill_mb": {k: round(v, 2) for k, v in left.items()},
                          "after_restart_mb": {k: round(v, 2) for k, v in after.items()},
                          "dead_served_folder_exists": served.exists()}), flush=True)
    finally:
        again.stop()


def main() -> None:
    only = set(sys.argv[1:])  # probe groups to run (default all): uploads votes finetunes texts huge blind cli kill9
    run = (lambda group: not only or group in only)  # noqa: E731
    tmp = Path(tempfile.mkdtemp(prefix="kdtts-attack-"))
    data = tmp / "data"
    print(f"building the hostile files in {tmp}", flush=True)
    files = {}
    if run("uploads") or run("kill9"):
        files = {"zip_10h_4khz": silent_zip(tmp / "10h.zip", 4000, 10),
                 "zip_55h_1khz": silent_zip(tmp / "55h.zip", 1000, 55),
                 "zip_140mb_then_bad_crc": damaged_zip(tmp / "crc.zip"), "zip_1999_char_line": long_line_zip(tmp / "line.zip")}
    app = App(data)
    try:
        for _ in range(180):  # the start-up example and the blind test's clips are rendered first
            if len(list((data / "listen_cache").rglob("*.wav"))) >= 16:  # 4 prompts x 4 systems
                break
            time.sleep(1)
        time.sleep(5)
        start_mb = _tree_mb(data)
        print(json.dumps({"idle_rss_mb": round(_status_mb(app.proc.pid, "VmRSS"), 1), "data_mb": round(start_mb, 2)}))
        for name, archive in files.items():
            if run("uploads"):
                upload(app, name, archive)
        for group, probe in (("votes", forged_votes), ("finetunes", forged_finetunes), ("texts", texts),
                             ("huge", huge_texts), ("blind", blind)):
            if run(group):
                probe(app)
        print(json.dumps({"data_growth_after_all_probes_mb": round(_tree_mb(data) - start_mb, 2),
                          "finetune_uploads_left": len(list((data / "finetune_uploads").glob("*")))}), flush=True)
        if run("cli"):
            cli_checkpoint(tmp)
        if run("kill9"):
            kill9(app, files["zip_1999_char_line"], tmp)
    finally:
        if app.proc.poll() is None:
            app.stop()


if __name__ == "__main__":
    main()
