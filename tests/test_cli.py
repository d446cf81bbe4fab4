"""`python -m kdtts` end to end, in a subprocess, as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def kdtts(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "kdtts", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def closing_json(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no output"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def two_lines(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "two_lines.txt"
    path.write_text("Dr. Smith paid $3.50 at 10:30.\n\n   \nA second, rather longer sentence follows here.\n",
                    encoding="utf-8")
    return path


def test_synth_teacher_text_file(two_lines, tmp_path, teacher):
    out_dir = tmp_path / "wavs"
    run = kdtts("synth", "--model", "teacher", "--text-file", str(two_lines), "--out-dir", str(out_dir),
                "--deterministic", "--threads", "1")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["000.wav", "001.wav"]
    report = closing_json(run.stdout)
    assert set(report) == {"model", "utterances", "audio_seconds", "compute_seconds", "rtf"}
    assert report["model"] == "teacher" and report["utterances"] == 2
    seconds = 0.0
    for name in ("000.wav", "001.wav"):
        info = sf.info(str(out_dir / name))
        assert info.samplerate == 22050 and info.channels == 1 and info.frames % 256 == 0
        seconds += info.frames / info.samplerate
    assert report["audio_seconds"] == pytest.approx(seconds, abs=2e-3)
    assert report["compute_seconds"] > 0
    assert report["rtf"] == pytest.approx(report["compute_seconds"] / report["audio_seconds"], rel=1e-2)
    # deterministic: the second line is what the teacher itself says for it
    audio, _ = sf.read(str(out_dir / "001.wav"), dtype="float32")
    expected = teacher.full(np.asarray(teacher.phonemizer.ids("A second, rather longer sentence follows here.")),
                            teacher.default_scales.deterministic())
    assert len(audio) == len(expected.audio)
    assert np.abs(audio - np.clip(expected.audio, -1, 1)).max() < 2e-3


def test_synth_student_single_text(random_student_path, tmp_path):
    out = tmp_path / "student.wav"
    run = kdtts("synth", "--model", "student", "--student", str(random_student_path), "--text", "Hello world.",
                "--out", str(out), "--threads", "1")
    assert run.returncode == 0, run.stderr
    report = closing_json(run.stdout)
    assert report["model"] == "student" and report["utterances"] == 1 and report["audio_seconds"] > 0
    assert sf.info(str(out)).samplerate == 22050


def test_student_with_teacher_durations_is_sample_aligned(random_student_path, tmp_path):
    text = "The student reads with the teacher's timing."
    paths = {}
    for name, extra in (("teacher", ["--model", "teacher"]),
                        ("aligned", ["--model", "student", "--durations", "teacher"]),
                        ("own", ["--model", "student"])):
        paths[name] = tmp_path / f"{name}.wav"
        run = kdtts("synth", *extra, "--student", str(random_student_path), "--text", text, "--out", str(paths[name]),
                    "--deterministic", "--threads", "1")
        assert run.returncode == 0, run.stderr
    frames = {name: sf.info(str(p)).frames for name, p in paths.items()}
    assert frames["aligned"] == frames["teacher"]
    assert frames["own"] != frames["teacher"]  # an untrained student's own durations differ


def test_info(random_student_path):
    run = kdtts("info", "--student", str(random_student_path))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    teacher, student = report["teacher"], report["student"]
    for part in (teacher, student):
        assert {"parameters", "bytes", "sample_rate", "path"} <= set(part)
        assert part["parameters"] > 0 and part["bytes"] > 0 and part["sample_rate"] == 22050
    assert teacher["path"].endswith(".onnx") and Path(teacher["path"]).stat().st_size == teacher["bytes"]
    assert student["path"] == str(random_student_path)
    assert student["bytes"] == random_student_path.stat().st_size
    assert student["parameters"] < teacher["parameters"]
    from kdtts.student.header import SHIPPED_STUDENT, TIERS

    assert set(report["tiers"]) == set(TIERS)  # every tier, shipped or not (then with the reason)
    assert report["tiers"]["small"]["path"] == str(SHIPPED_STUDENT)
    for name, path in TIERS.items():
        assert ("error" in report["tiers"][name]) != path.exists()


def test_a_tier_by_name(tmp_path):
    """`--student small` is the shipped default; a tier this checkout lacks is one line, exit code 2."""
    from kdtts.student.header import TIERS

    run = kdtts("synth", "--model", "student", "--student", "small", "--text", "Hello.", "--out", str(tmp_path / "a.wav"))
    assert run.returncode == 0, run.stderr
    missing = [name for name, path in TIERS.items() if not path.exists()]
    if missing:
        run = kdtts("synth", "--model", "student", "--student", missing[0], "--text", "Hello.", "--out", str(tmp_path / "b.wav"))
        assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
        assert f"The {missing[0]} tier is not in this checkout" in run.stderr


@pytest.mark.parametrize("args, message", [
    (["--text", "   "], "empty"),
    (["--text", ""], "empty"),
    (["--text", "😀🎉"], "nothing speakable"),
    (["--text", "a" * 2001], "limit is 2,000"),
])
def test_bad_text_is_one_clear_line(args, message, tmp_path):
    run = kdtts("synth", *args, "--out", str(tmp_path / "x.wav"))
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert lines[0].startswith("kdtts: error:") and message in lines[0]
    assert not (tmp_path / "x.wav").exists()


def test_bad_line_in_text_file_names_the_line(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("Fine.\n\n🙂\n", encoding="utf-8")
    run = kdtts("synth", "--text-file", str(path), "--out-dir", str(tmp_path / "o"))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "line 3" in run.stderr and "nothing speakable" in run.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, message", [
    (["synth", "--text", "hi"], "--out"),
    (["synth", "--text-file", "/nonexistent/lines.txt", "--out-dir", "x"], "cannot read"),
    (["synth", "--text", "hi", "--out", "x.wav", "--voice", "/nonexistent/v.onnx"], "/nonexistent/v.onnx"),
    (["info", "--student", "/nonexistent/s.safetensors"], "/nonexistent/s.safetensors"),
])
def test_usage_errors_are_clear(args, message):
    run = kdtts(*args)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert message in run.stderr


def test_every_domain_error_is_one_line_and_exit_code_2(tmp_path):
    """Text, dataset, checkpoint, config, voice and file errors all leave by the CLI's one error path."""
    from kdtts.teachers.piper import default_voice

    dataset = tmp_path / "dataset"
    (dataset / "wavs").mkdir(parents=True)
    (dataset / "metadata.csv").write_text("clip1|Hello there.\n", encoding="utf-8")  # wavs/clip1.wav is missing
    pickle = tmp_path / "student.pt"
    pickle.write_bytes(b"\x80\x04" + b"\0" * 64)
    voice = tmp_path / "broken.onnx"  # a voice file that is not ONNX, with a real config beside it
    voice.write_bytes(b"not a model" * 100)
    (tmp_path / "broken.onnx.json").write_bytes(Path(f"{default_voice()}.json").read_bytes())
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"no_such_setting": 1}))
    cases = [
        (["distill", "--data", str(dataset), "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c")],
         "clip1.wav is missing"),
        (["synth", "--model", "student", "--student", str(pickle), "--text", "Hi.", "--out", str(tmp_path / "a.wav")],
         "pickle"),
        (["distill", "--config", str(config), "--out", str(tmp_path / "run")], "no_such_setting"),
        (["adversarial", "--config", str(tmp_path / "missing.json"), "--out", str(tmp_path / "run")], "missing.json"),
        (["synth", "--text", "", "--out", str(tmp_path / "b.wav")], "empty"),
        (["synth", "--voice", str(voice), "--text", "Hi.", "--out", str(tmp_path / "c.wav")], "not a readable ONNX"),
    ]
    for args, message in cases:
        run = kdtts(*args)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2, (args, run.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith("kdtts: error:") and message in lines[0], (args, run.stderr)
    assert not (tmp_path / "run" / "last.safetensors").exists()


HEAVY = ("torch", "torchaudio", "onnx", "gradio", "matplotlib")
LOADED = ("import sys, json; from kdtts.cli import main; main(sys.argv[1:]); "
          f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))), file=sys.stderr)")


def test_student_synth_imports_neither_torch_nor_onnx_once_cached(random_student_path, tmp_path):
    """The first run may export the student (torch) and cut the teacher (onnx) into an empty cache;
    every later run reads both from the cache and imports neither."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "KDTTS_CACHE_DIR": str(tmp_path / "cache")}
    args = ["synth", "--model", "student", "--student", str(random_student_path), "--text", "Hello there.",
            "--out", str(tmp_path / "s.wav")]
    loaded = []
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", LOADED, *args], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        loaded.append(json.loads(run.stderr.strip().splitlines()[-1]))
        assert closing_json(run.stdout)["audio_seconds"] > 0
    assert {"torch", "onnx"} <= set(loaded[0])  # the export and the cut, into the empty cache
    assert loaded[1] == []
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["onnx", "teacher-graphs-v1"]
    raw = subprocess.run([sys.executable, "-c", LOADED, *args[:-2], "--output-raw"], cwd=ROOT, env=env,
                         capture_output=True, timeout=300)  # streamed: the window overlap comes from the export
    assert raw.returncode == 0 and len(raw.stdout) > 0, raw.stderr[-2000:]
    assert json.loads(raw.stderr.decode().strip().splitlines()[-1]) == []


def test_help_imports_no_command():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", LOADED.replace("main(sys.argv[1:])", "build_parser(['--help'])")
                          .replace("import main", "import build_parser")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stderr.strip().splitlines()[-1]) == []
    help_text = kdtts("--help").stdout
    for command in ("synth", "info", "distill", "adversarial", "compose", "export", "evaluate"):
        assert f"    {command}" in help_text
