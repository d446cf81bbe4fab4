"""The teacher pool: several teacher processes fill the cache the single-process reader fills, in corpus
order, and leave alone a cache another process is filling."""
from __future__ import annotations

import fcntl

import numpy as np

from kdtts.distill.data import build_cache, load_cache, read_manifest
from kdtts.distill.teacher_pool import CacheReader

SENTENCES = ["The cat sat on the mat.", "A bird sang in the tree.", "We walked home after dark.",
             "Bright stars filled the sky.", "Rain fell on the roof all night."]


def test_pool_fills_the_same_cache_as_one_teacher(teacher, tmp_path):
    reader = CacheReader(tmp_path / "pool", SENTENCES, processes=2).start()
    assert reader.wait_for(len(SENTENCES)) == len(SENTENCES)
    reader.stop()
    build_cache(tmp_path / "one", SENTENCES, teacher, progress=False)
    assert [i["text"] for i in read_manifest(tmp_path / "pool")] == SENTENCES
    for a, b in zip(load_cache(tmp_path / "pool"), load_cache(tmp_path / "one")):
        assert np.array_equal(a.durations.numpy(), b.durations.numpy())
        assert np.abs(a.z.float().numpy() - b.z.float().numpy()).max() < 1e-2
    assert reader.rate and reader.rate > 0
    assert (tmp_path / "pool" / "coverage.json").exists()


def test_pool_leaves_a_cache_another_process_is_filling(tmp_path):
    (tmp_path / "utts").mkdir()
    with (tmp_path / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as build_cache does while it writes
        reader = CacheReader(tmp_path, SENTENCES, processes=1).start()
        assert reader.busy_elsewhere and not reader.running
        assert reader.wait_for(len(SENTENCES), timeout=0.5) == 0
    assert not (tmp_path / "manifest.jsonl").exists()
