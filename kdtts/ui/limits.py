"""Per-visitor quotas for a public Space: who is asking, and how often they may ask."""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


def visitor(request: object | None) -> str:
    """The visitor's address: the first X-Forwarded-For hop behind a proxy (as on Spaces), else the peer."""
    if request is None:
        return "local"
    headers = getattr(request, "headers", None) or {}
    forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
    if forwarded:
        return forwarded.split(",")[0].strip()
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "local"


class RateLimiter:
    """At most `limit` events per `window` seconds per key (a sliding window); `hit` raises when over."""

    def __init__(self, limit: int, window: float, what: str) -> None:
        self.limit, self.window, self.what = limit, window, what
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            events = self._events[key]
            while events and now - events[0] >= self.window:
                events.popleft()
            if len(events) >= self.limit:
                wait = self.window - (now - events[0])
                raise ValueError(f"Too many {self.what}: at most {self.limit} every {self._span()}. "
                                 f"Please try again in {wait:.0f} s.")
            events.append(now)
            if len(self._events) > 10_000:  # forget idle visitors so the table stays small
                for k in [k for k, v in self._events.items() if not v or now - v[-1] >= self.window]:
                    del self._events[k]

    def _span(self) -> str:
        return f"{self.window / 3600:g} h" if self.window >= 3600 else f"{self.window / 60:g} min"
