"""`synth --output-raw`: 16-bit PCM on stdout as it is made, the same samples as the WAV; stdin lines."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
COMMAND = [sys.executable, "-m", "kdtts", "synth", "--deterministic", "--threads", "1"]


def test_raw_output_is_the_wavs_samples_and_nothing_else(tmp_path):
    text = "The weather is lovely today. A second sentence, somewhat longer than the first, follows it."
    wav = tmp_path / "a.wav"
    run = subprocess.run([*COMMAND, "--model", "student", "--text", text, "--out", str(wav)], cwd=ROOT, env=ENV,
                         capture_output=True, timeout=180)
    assert run.returncode == 0, run.stderr.decode()
    raw = subprocess.run([*COMMAND, "--model", "student", "--text", text, "--output-raw"], cwd=ROOT, env=ENV,
                         capture_output=True, timeout=180)
    assert raw.returncode == 0, raw.stderr.decode()
    expected, rate = sf.read(str(wav), dtype="int16")
    pcm = np.frombuffer(raw.stdout, dtype="<i2")  # stdout holds the audio alone: any text would misalign it
    assert rate == 22050 and len(pcm) == len(expected) > rate
    steps = np.abs(pcm.astype(np.int32) - expected)  # windowed vs whole decode differ by ~1e-6: a rare rounding flip
    assert steps.max() <= 1 and (steps == 0).mean() > 0.999
    summary = json.loads(raw.stderr.decode().strip().splitlines()[-1])
    assert summary["sample_rate"] == 22050 and summary["audio_seconds"] == round(len(pcm) / rate, 3)


def test_stdin_lines_are_spoken_as_they_arrive(tmp_path):
    proc = subprocess.Popen([*COMMAND, "--model", "teacher", "--text-file", "-", "--output-raw"], cwd=ROOT,
                            env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"Hello there.\n\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 120)  # stdin is still open
        assert ready, "no audio for the first line while stdin stays open"
        first = os.read(proc.stdout.fileno(), 1 << 20)
        assert len(first) > 0 and proc.poll() is None
        rest, err = proc.communicate(b"%%%\nGoodbye.\n", timeout=120)  # and closes stdin
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"stdin line 3 skipped" in err  # nothing speakable: noted, not fatal
    summary = json.loads(err.decode().strip().splitlines()[-1])
    assert summary["utterances"] == 2
    assert abs((len(first) + len(rest)) // 2 - summary["audio_seconds"] * 22050) <= 12  # seconds to 3 places
