"""A teacher cache packed as phoneme ids alone, rebuilt wherever the teacher's ONNX runs.

A cache of 3,200 sentences is about 900 MB of z and audio but under 2 MB of ids. Packed, it travels to a
machine with a small upload (a lent GPU machine) and is rebuilt there in parallel, without the
phonemiser: the teacher is deterministic at temperature 0, so the rebuilt cache is the same teacher's reading.
A rebuilt utterance whose frame count differs from the packed one (a sentence the teacher read in pieces) is
left out rather than mislabelled.

    python -m kdtts.distill.portable_cache pack cache/joe-t0 PACKED
    python -m kdtts.distill.portable_cache rebuild PACKED VOICE.onnx cache/joe-t0 --workers 16
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from kdtts.distill.data import read_manifest, teacher_record, voice_identity, write_utt
from kdtts.runtime import cpu_session
from kdtts.teachers.piper import graph_feed
from kdtts.teachers.piper_graph import split_graph
from kdtts.voice import Scales

_worker: dict = {}


def pack(cache: Path, out: Path) -> Path:
    """`out/ids.jsonl` (text, frames, ids per utterance, in manifest order) and the cache's teacher.json."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "ids.jsonl").open("w") as f:
        for item in read_manifest(cache):
            with np.load(cache / "utts" / item["file"]) as utt:
                f.write(json.dumps({"text": item["text"], "frames": item["frames"],
                                    "ids": utt["ids"].astype(int).tolist()}) + "\n")
    shutil.copy(cache / "teacher.json", out / "teacher.json")
    return out / "ids.jsonl"


def _start_worker(full_graph: bytes, scales: Scales, cache: str) -> None:
    _worker.update(session=cpu_session(full_graph, 1), scales=scales, cache=Path(cache))


def _read(row: dict) -> dict | None:
    ids = np.asarray(row["ids"], dtype=np.int64)
    audio, durations, z = _worker["session"].run(None, graph_feed(ids, _worker["scales"]))
    durations = durations.reshape(-1).astype(np.int64)
    if int(durations.sum()) != row["frames"]:
        return None
    return write_utt(_worker["cache"], row["text"], ids, durations, z[0], audio.reshape(-1))


def rebuild(packed: Path, voice: Path, cache: Path, workers: int = 4, limit: int | None = None) -> dict:
    """Have the teacher read each packed utterance again (one single-threaded session per worker process)."""
    record = json.loads((packed / "teacher.json").read_text())
    identity = voice_identity(voice)
    if record.get("voice_sha256", identity["sha256"]) != identity["sha256"]:
        raise ValueError(f"{packed} was read by {record.get('voice_name')}; {voice} is another voice")
    if read_manifest(cache) or teacher_record(cache):
        raise ValueError(f"{cache} is not empty; rebuild into a new folder")
    rows = [json.loads(line) for line in (packed / "ids.jsonl").open()][:limit]
    (cache / "utts").mkdir(parents=True, exist_ok=True)
    scales = Scales(**record["scales"])
    full_graph = split_graph(onnx.load(str(voice))).full
    with multiprocessing.get_context("spawn").Pool(workers, _start_worker, (full_graph, scales, str(cache))) as pool:
        written = list(tqdm(pool.imap(_read, rows, chunksize=4), total=len(rows), desc="teacher rereads", unit="utt"))
    kept = [row for row in written if row is not None]
    with (cache / "manifest.jsonl").open("w") as manifest:
        manifest.writelines(json.dumps(row) + "\n" for row in kept)
    (cache / "teacher.json").write_text(json.dumps({**record, "voice": str(voice)}, indent=1))
    return {"rebuilt": len(kept), "left_out": len(rows) - len(kept)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("pack", help="write a cache's ids and teacher record to a folder")
    p.add_argument("cache", type=Path)
    p.add_argument("out", type=Path)
    r = verbs.add_parser("rebuild", help="rebuild a cache from packed ids with the teacher's ONNX")
    r.add_argument("packed", type=Path)
    r.add_argument("voice", type=Path, help="the teacher voice (.onnx) that read the packed cache")
    r.add_argument("cache", type=Path)
    r.add_argument("--workers", type=int, default=multiprocessing.cpu_count())
    r.add_argument("--limit", type=int)
    args = parser.parse_args()
    if args.verb == "pack":
        print(pack(args.cache, args.out))
    else:
        print(json.dumps(rebuild(args.packed, args.voice, args.cache, args.workers, args.limit)))


if __name__ == "__main__":
    main()
