"""Per-visitor quotas for a public Space: who is asking, and how often they may ask.

A quota is keyed on what the client cannot choose. X-Forwarded-For is written by the client as much
as by any proxy: only the hops appended by proxies we trust mean anything, and they are the last ones.
With `trusted` proxies in front of the app (kdtts.ui.settings.trusted_proxies), the visitor is the hop
the outermost trusted proxy appended, counted from the right; with none, the socket's peer address.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from kdtts.ui import settings


def visitor(request: object | None, trusted: int | None = None) -> str:
    """The visitor's address (see the module docstring); "local" without a request."""
    if request is None:
        return "local"
    trusted = settings.trusted_proxies() if trusted is None else trusted
    client = getattr(request, "client", None)
    peer = getattr(client, "host", None) or "local"
    if trusted <= 0:
        return peer
    headers = getattr(request, "headers", None) or {}
    forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-trusted] if len(hops) >= trusted else peer


class RateLimiter:
    """At most `limit` events per `window` seconds per key (a sliding window); `hit` raises when over."""

    def __init__(self, limit: int, window: float, what: str) -> None:
        self.limit, self.window, self.what = limit, window, what
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Raise as `hit` would, without counting an event (a quota checked before any work is done)."""
        self._count(key, record=False)

    def hit(self, key: str) -> None:
        self._count(key, record=True)

    def _count(self, key: str, record: bool) -> None:
        now = time.monotonic()
        with self._lock:
            events = self._events[key]
            while events and now - events[0] >= self.window:
                events.popleft()
            if len(events) >= self.limit:
                wait = self.window - (now - events[0])
                raise ValueError(f"Too many {self.what}: at most {self.limit} every {self._span()}. "
                                 f"Please try again in {wait:.0f} s.")
            if not record:
                return
            events.append(now)
            if len(self._events) > 10_000:  # forget idle visitors so the table stays small
                for k in [k for k, v in self._events.items() if not v or now - v[-1] >= self.window]:
                    del self._events[k]

    def _span(self) -> str:
        return f"{self.window / 3600:g} h" if self.window >= 3600 else f"{self.window / 60:g} min"
