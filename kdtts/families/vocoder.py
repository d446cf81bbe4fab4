"""The vocoder family: a vocoder teacher (HiFi-GAN V1; Tacotron 2's WaveRNN) and the student vocoder
(kdtts.student.vocoder.VocoderStudent) on the same mel; mel -> audio. The mel is the Piper teacher's
deterministic reading re-analysed (kdtts.vocoding), or Tacotron 2's own."""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from pathlib import Path

from kdtts.families.base import Family


def _config() -> type:
    from kdtts.distill.vocoder import VocoderDistillConfig

    return VocoderDistillConfig


def _no_flags(p: argparse.ArgumentParser) -> None:
    """None beyond the config's: its `teacher` field makes the `--teacher` flag."""


def vocoder_pair(args: argparse.Namespace):
    """The vocoder teacher and the student vocoder on one mel (kdtts.vocoding.VocoderPair)."""
    from kdtts.vocoding import VocoderPair

    return VocoderPair.load(args.teacher, args.student, args.voice, getattr(args, "threads", None))


def _distill(args: argparse.Namespace) -> None:
    from kdtts.cli.common import read_config
    from kdtts.distill.vocoder import VocoderDistillConfig, check_distillable, distill_vocoder, prepare_vocoder_data
    from kdtts.teachers.registry import require

    require(args.teacher)
    cfg = read_config(VocoderDistillConfig, args)
    check_distillable(cfg.teacher)
    prepare_vocoder_data(cfg)
    out = distill_vocoder(cfg, args.out, resume=args.resume)
    print(json.dumps({"vocoder": str(out)}))


def _evaluate(args: argparse.Namespace) -> None:
    from kdtts.cli.common import command_line
    from kdtts.distill.corpus import read_heldout
    from kdtts.evaluate.vocoder import evaluate_vocoder

    started = time.perf_counter()
    pair = vocoder_pair(args)
    texts = read_heldout(Path(args.text_file)) if args.text_file else read_heldout()
    report = evaluate_vocoder(pair, texts[:args.limit], Path(args.out), args.speed_sentences, args.repeats,
                              command_line())
    print(json.dumps({"out": args.out, "summary": report["summary"],
                      "seconds": round(time.perf_counter() - started, 1)}, indent=1))


def _synth(args: argparse.Namespace, jobs: Iterable) -> None:
    """--model teacher: the vocoder teacher; --model student: the student vocoder; both on the same mel."""
    from kdtts.audio import write_wav
    from kdtts.cli.common import progress
    from kdtts.cli.errors import fail
    from kdtts.text import TextError

    todo = list(jobs)
    pair = vocoder_pair(args)
    if args.model == "student" and pair.student is None:
        fail("no student vocoder yet (assets/vocoder.safetensors); train one with "
             f"`python -m kdtts distill --teacher {args.teacher} --out runs/vocoder` or pass --student PATH")
    audio_seconds = compute_seconds = 0.0
    for text, path, source in progress(todo, f"synth ({args.teacher}, {args.model})"):
        try:
            result = pair.synthesize(text, args.model)
        except TextError as error:
            fail(f"{source}: {error}")
        compute_seconds += result.timings["vocoder"]
        audio_seconds += result.seconds
        write_wav(path, result.audio, result.sample_rate)
    print(json.dumps({"teacher": args.teacher, "model": args.model, "utterances": len(todo),
                      "audio_seconds": round(audio_seconds, 3), "vocoder_seconds": round(compute_seconds, 4),
                      "vocoder_rtf": round(compute_seconds / max(audio_seconds, 1e-9), 5)}))


def _finetune(host, job) -> None:
    from kdtts.distill.finetune_vocoder import train_vocoder_job

    train_vocoder_job(host, job)


def _bases(host) -> dict[str, Path]:
    from kdtts.distill.finetune_vocoder import vocoder_bases

    return vocoder_bases(host)


def _check_finetune(request) -> None:
    from kdtts.distill.vocoder import check_distillable

    if request.recordings:
        raise ValueError("recordings train the text-to-speech student; a student vocoder learns from the "
                         "vocoder teacher's audio, so leave the recordings empty")
    check_distillable(request.teacher)


FAMILY = Family(
    name="vocoder", kinds=("vocoder", "acoustic model + vocoder"), student="student vocoder", config=_config,
    distill_flags=_no_flags, distill=_distill, evaluate=_evaluate, synth=_synth, finetune=_finetune,
    finetune_bases=_bases, check_finetune=_check_finetune)
