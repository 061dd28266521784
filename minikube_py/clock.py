"""Time as a dependency: every component takes a Clock so tests can drive time by hand.

Controllers, the agent's back-off and probes, and the store's timestamps all read time through
this one interface; `FakeClock` lets unit tests advance it without sleeping.
"""

from __future__ import annotations

import threading
import time


class Clock:
    """The real clock: wall time for timestamps, monotonic time for intervals."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock(Clock):
    """A clock that only moves when a test calls `advance`; `sleep` advances it at once."""

    def __init__(self, start: float = 1_800_000_000.0):
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
