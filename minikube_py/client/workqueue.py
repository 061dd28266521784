"""The work queue every controller pulls keys from, with client-go's rules.

Watch events only enqueue a key; workers take keys from this queue and reconcile. Three
structures make that safe: an ordered queue of waiting keys, a dirty set (keys that need work)
and a processing set (keys a worker holds). Adding a waiting key is a no-op, so bursts of events
coalesce; adding a key that is being processed marks it dirty, and `done` puts it back, so one key
is never handled by two workers at once and no event is lost. Delayed adds (`add_after`) and
per-key exponential retry back-off (`add_rate_limited`, 5 ms doubling, capped at 1000 s) read
time from the injected Clock; a worker waiting in `get` wakes when the next delayed key is due,
so no timer thread is needed. With a FakeClock, tests `advance` the clock and call `tick()`.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from typing import Generic, Hashable, TypeVar

from minikube_py.clock import Clock

# What a queue holds: a controller's keys (`namespace/name` strings for the controllers here).
KeyT = TypeVar("KeyT", bound=Hashable)

# client-go's DefaultControllerRateLimiter per-item curve: 5 ms, 10 ms, 20 ms, ... at most 1000 s.
RETRY_BASE_DELAY_SECONDS = 0.005
RETRY_MAX_DELAY_SECONDS = 1000.0
# The longest single wait of a worker in `get` (threading refuses waits beyond TIMEOUT_MAX).
MAX_WAIT_SECONDS = 3600.0


class WorkQueue(Generic[KeyT]):
    """A deduplicating, thread-safe queue of keys with delayed and rate-limited adds."""

    def __init__(
        self,
        clock: Clock | None = None,
        name: str = "",
        retry_base_delay: float = RETRY_BASE_DELAY_SECONDS,
        retry_max_delay: float = RETRY_MAX_DELAY_SECONDS,
    ):
        self.name = name
        self._clock = clock or Clock()
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._condition = threading.Condition()
        self._queue: deque[KeyT] = deque()
        self._dirty: set[KeyT] = set()
        self._processing: set[KeyT] = set()
        # Delayed keys: a heap of (ready_at, sequence, key) plus the earliest ready time per key;
        # heap entries whose time no longer matches `_ready_at` are stale and skipped.
        self._delayed: list[tuple[float, int, KeyT]] = []
        self._ready_at: dict[KeyT, float] = {}
        self._sequence = 0
        self._failures: dict[KeyT, int] = {}
        self._shutting_down = False

    # -- adding -------------------------------------------------------------------------------

    def add(self, key: KeyT) -> None:
        """Mark `key` as needing work; a no-op if it is already waiting."""
        with self._condition:
            self._add_locked(key)

    def _add_locked(self, key: KeyT) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            # `done` re-queues it, so the worker holding it now is the only one to see it.
            return
        self._queue.append(key)
        self._condition.notify()

    def add_after(self, key: KeyT, delay: float) -> None:
        """Add `key` once `delay` seconds have passed; an earlier pending time for it wins."""
        if delay <= 0:
            self.add(key)
            return
        with self._condition:
            if self._shutting_down:
                return
            ready_at = self._clock.monotonic() + delay
            current = self._ready_at.get(key)
            if current is not None and current <= ready_at:
                return
            self._ready_at[key] = ready_at
            self._sequence += 1
            heapq.heappush(self._delayed, (ready_at, self._sequence, key))
            # A waiting worker may now have to wake earlier than it planned.
            self._condition.notify_all()

    def add_rate_limited(self, key: KeyT) -> None:
        """Retry `key` after its back-off: 5 ms, doubling per consecutive failure, capped."""
        with self._condition:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        # 2**failures overflows a float long after the cap is reached, so clamp the exponent.
        delay = min(self._retry_base_delay * (2 ** min(failures, 64)), self._retry_max_delay)
        self.add_after(key, delay)

    def forget(self, key: KeyT) -> None:
        """Reset `key`'s back-off: call after a successful sync."""
        with self._condition:
            self._failures.pop(key, None)

    def num_requeues(self, key: KeyT) -> int:
        """How many rate-limited retries `key` has had since it was last forgotten."""
        with self._condition:
            return self._failures.get(key, 0)

    # -- taking -------------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> KeyT | None:
        """The next key to work on, or None on timeout or shutdown. Call `done(key)` after."""
        # The timeout is a real wait, so it runs on real time even when the clock is a FakeClock.
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                if self._shutting_down:
                    return None
                next_due = self._promote_due_locked()
                key = self._pop_locked()
                if key is not None:
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                wait = None if next_due is None else max(next_due - self._clock.monotonic(), 0.0)
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                # A key due in a billion years still lets the wait return now and then: no overflow.
                self._condition.wait(None if wait is None else min(wait, MAX_WAIT_SECONDS))

    def _pop_locked(self) -> KeyT | None:
        """The next waiting key, taken out of the queue (a subclass may order them otherwise)."""
        return self._queue.popleft() if self._queue else None

    def done(self, key: KeyT) -> None:
        """Finish work on `key`; if it was added meanwhile, it goes back in the queue."""
        with self._condition:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
                self._condition.notify()

    def tick(self) -> float | None:
        """Move delayed keys that are due into the queue; seconds until the next one, or None.

        Workers do this themselves while they wait; tests on a FakeClock call it after `advance`.
        """
        with self._condition:
            next_due = self._promote_due_locked()
            return None if next_due is None else max(next_due - self._clock.monotonic(), 0.0)

    def _promote_due_locked(self) -> float | None:
        now = self._clock.monotonic()
        while self._delayed:
            ready_at, _, key = self._delayed[0]
            if self._ready_at.get(key) != ready_at:
                heapq.heappop(self._delayed)
                continue
            if ready_at > now:
                return ready_at
            heapq.heappop(self._delayed)
            del self._ready_at[key]
            self._add_locked(key)
        return None

    # -- state --------------------------------------------------------------------------------

    def shut_down(self) -> None:
        """Stop handing out keys: every `get`, waiting or future, returns None."""
        with self._condition:
            self._shutting_down = True
            self._condition.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._condition:
            return self._shutting_down

    def __len__(self) -> int:
        """Keys waiting now (delayed keys that are not yet due do not count)."""
        with self._condition:
            return len(self._queue)

    def pending_delayed(self) -> int:
        """Keys waiting for their `add_after` time."""
        with self._condition:
            return len(self._ready_at)
