"""The data directory's byte budget, and the sweeps that keep it clean.

Everything a visitor can make the app write lands under the data directory, so one budget
(`KDTTS_MAX_DATA_MB`) bounds it: a write that would pass it is refused, after one sweep, with a
message. Sweeps run at start-up and on a timer: uploads no job uses, teacher caches unused for a
while, blind-test clips of systems that are gone, and the served folders of processes that died.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("kdtts.ui")
SERVED_PREFIX = "kdtts-ui-"
_SERVED = re.compile(re.escape(SERVED_PREFIX) + r"(\d+)-")

Sweeper = Callable[[bool], int]
"""sweep(aggressive) -> bytes freed; aggressive: the budget is full, free what is not in use now."""


class StorageFull(ValueError):
    """A write refused because the data directory's budget is spent; the message is for the visitor."""


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def remove(path: Path) -> int:
    """Delete a file or folder; return the bytes it held."""
    path = Path(path)
    if not path.exists():
        return 0
    size = tree_bytes(path) if path.is_dir() else path.stat().st_size
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return size


def served_folder(tmp: Path | None = None) -> Path:
    """A new served folder named for this process, so a later start can tell it from a live one's."""
    return Path(tempfile.mkdtemp(prefix=f"{SERVED_PREFIX}{os.getpid()}-", dir=tmp))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_served_folders(tmp: Path | None = None) -> int:
    """Remove the served folders of kdtts processes that are no longer running; return the bytes freed."""
    freed = 0
    for folder in Path(tmp or tempfile.gettempdir()).glob(f"{SERVED_PREFIX}*"):
        match = _SERVED.match(folder.name)
        if match and folder.is_dir() and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            freed += remove(folder)
    if freed:
        log.info("removed %.1f MB of served files left by dead processes", freed / 2**20)
    return freed


class DataBudget:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root, self.max_bytes = Path(root), int(max_bytes)
        self.sweepers: list[Sweeper] = []
        self._lock = threading.Lock()  # one check (and its sweep) at a time

    def usage(self) -> int:
        return tree_bytes(self.root)

    def sweep(self, aggressive: bool = False) -> int:
        freed = 0
        for sweeper in self.sweepers:
            try:
                freed += sweeper(aggressive)
            except Exception:  # noqa: BLE001 - one failing sweep must not stop the others
                log.exception("sweep failed")
        return freed

    def require(self, incoming: int, what: str) -> None:
        """Room for `incoming` more bytes, or StorageFull; one aggressive sweep is tried first."""
        with self._lock:
            if self.usage() + incoming <= self.max_bytes:
                return
            self.sweep(aggressive=True)
            used = self.usage()
        if used + incoming > self.max_bytes:
            raise StorageFull(f"The server has no room for {what} now ({used / 2**20:.0f} of "
                              f"{self.max_bytes / 2**20:.0f} MB used, {incoming / 2**20:.0f} MB needed). "
                              "Please try again later.")
