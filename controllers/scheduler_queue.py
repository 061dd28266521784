"""The scheduling queue: which pending pod the scheduler tries next, and when one that did not fit
is tried again.

kube-scheduler keeps pending pods in three places (k/k pkg/scheduler/internal/queue), and so
does `SchedulingQueue`:

- activeQ: pods to try now, the highest `spec.priority` first, then the one queued first
  (the PrioritySort plugin), so a burst of low-priority pods does not hold up an urgent one;
- backoffQ: pods that failed and wait out their back-off before they go back to activeQ:
  1 s after the first attempt, doubled with each attempt, at most 10 s;
- unschedulable: pods that did not fit, left alone until a cluster event that may make them
  fit (a node added or changed, a pod on a node gone or finished, a claim bound...) moves them
  (`move_all`): to activeQ, or to backoffQ while their back-off lasts. A pod left there for
  5 minutes is moved anyway (the periodic flush of leftovers), in case no event told.

A pod whose attempt failed while such an event came in goes to backoffQ instead of waiting for
another event: the one that came may be what it needed ("move request" during its cycle). An
update of the pod itself (its spec or labels, not its status) moves it out of unschedulable too.

It is a `WorkQueue` in every other way (controllers/scheduler.py is a `Controller`): one worker
holds a key at a time, delayed adds (`add_after`) wait on the heap WorkQueue keeps, a failed
sync (`add_rate_limited`) backs off as a failed attempt does, and workers wake by themselves
when the next back-off ends, so no flush thread is needed. With a FakeClock, tests `advance`
the clock and call `tick()`.
"""

from __future__ import annotations

import heapq
from typing import Callable

from minikube_py.client.workqueue import WorkQueue
from minikube_py.clock import Clock

# kube-scheduler's defaults (podInitialBackoffSeconds, podMaxBackoffSeconds,
# podMaxInUnschedulablePodsDuration).
INITIAL_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 10.0
MAX_UNSCHEDULABLE_SECONDS = 300.0


def backoff_seconds(attempts: int, initial: float = INITIAL_BACKOFF_SECONDS, most: float = MAX_BACKOFF_SECONDS) -> float:
    """The back-off after `attempts` attempts: 1 s, 2 s, 4 s, 8 s, then 10 s."""
    return min(initial * 2 ** min(max(attempts - 1, 0), 32), most)


class SchedulingQueue(WorkQueue[str]):
    """activeQ by priority and queue time, backoffQ, and the unschedulable pods; keys are pod
    `namespace/name`, `priority_of(key)` their priority when they are queued."""

    def __init__(self, clock: Clock | None = None, name: str = "", priority_of: Callable[[str], int] = lambda key: 0,
                 initial_backoff: float = INITIAL_BACKOFF_SECONDS, max_backoff: float = MAX_BACKOFF_SECONDS,
                 max_unschedulable: float = MAX_UNSCHEDULABLE_SECONDS):
        super().__init__(clock, name)
        self._priority_of = priority_of
        self._initial_backoff, self._max_backoff = initial_backoff, max_backoff
        self._max_unschedulable = max_unschedulable
        # activeQ: a heap of (-priority, queued at, sequence, key); `_active` holds each key's
        # live entry, and heap entries that are not it are stale and skipped.
        self._active_heap: list[tuple[int, float, int, str]] = []
        self._active: dict[str, tuple[int, float, int, str]] = {}
        # backoffQ: a heap of (back-off ends, sequence, key) with the same stale-entry rule.
        self._backoff_heap: list[tuple[float, int, str]] = []
        self._backoff: dict[str, float] = {}
        self._unschedulable: dict[str, float] = {}  # key -> since when (monotonic)
        self._queued_at: dict[str, float] = {}  # key -> when it last entered a queue (its "timestamp")
        self._attempts: dict[str, int] = {}
        self._failed_at: dict[str, float] = {}  # key -> when its last attempt failed
        # A cycle number per attempt; a move request records the cycle it came in.
        self._cycle = 0
        self._move_request_cycle = -1
        self._cycle_of: dict[str, int] = {}
        # Keys removed while a worker held them: their attempt's outcome queues nothing.
        self._removed_in_flight: set[str] = set()

    # -- adding -------------------------------------------------------------------------------

    def _add_locked(self, key: str) -> None:
        """A pod added or updated (or a delayed add come due): to activeQ, out of unschedulable
        (to backoffQ instead while it backs off); a pod in backoffQ stays there."""
        if self._shutting_down:
            return
        if key in self._processing:
            self._dirty.add(key)  # `done` queues it again
            return
        if key in self._active or key in self._backoff:
            return
        if self._unschedulable.pop(key, None) is not None:
            self._to_active_or_backoff(key)
            return
        self._queued_at[key] = self._clock.monotonic()
        self._push_active(key)

    def add_rate_limited(self, key: str) -> None:
        """A sync that failed (an API error): the pod backs off as after a failed attempt."""
        with self._condition:
            self._failures[key] = self._failures.get(key, 0) + 1
            self._failed(key, unschedulable=False)

    def add_unschedulable(self, key: str) -> None:
        """The attempt the worker holding `key` made found no node: the pod waits in
        unschedulable for an event, or in backoffQ if one came during the attempt."""
        with self._condition:
            self._failed(key, unschedulable=True)

    def move_all(self, which: Callable[[str], bool] | None = None) -> int:
        """A cluster event that may make unschedulable pods fit: move them (those `which`
        accepts) to activeQ, or backoffQ while they back off. Returns how many moved."""
        with self._condition:
            self._move_request_cycle = self._cycle
            moving = [key for key in self._unschedulable if which is None or which(key)]
            for key in moving:
                del self._unschedulable[key]
                self._to_active_or_backoff(key)
            return len(moving)

    def remove(self, key: str) -> None:
        """The pod is bound or gone: forget it everywhere."""
        with self._condition:
            self._active.pop(key, None)
            self._backoff.pop(key, None)
            self._unschedulable.pop(key, None)
            self._ready_at.pop(key, None)
            self._dirty.discard(key)
            if key in self._processing:
                self._removed_in_flight.add(key)
            for state in (self._queued_at, self._attempts, self._failed_at, self._cycle_of, self._failures):
                state.pop(key, None)

    def _failed(self, key: str, unschedulable: bool) -> None:
        if key in self._removed_in_flight:
            return
        now = self._clock.monotonic()
        self._failed_at[key] = self._queued_at[key] = now
        moved_meanwhile = self._move_request_cycle >= self._cycle_of.get(key, -1) or key in self._dirty
        self._dirty.discard(key)
        if unschedulable and not moved_meanwhile:
            self._unschedulable[key] = now
        else:
            self._push_backoff(key)

    def _to_active_or_backoff(self, key: str) -> None:
        if self._backoff_ends(key) > self._clock.monotonic():
            self._push_backoff(key)
        else:
            self._push_active(key)

    def _backoff_ends(self, key: str) -> float:
        failed_at = self._failed_at.get(key)
        if failed_at is None:
            return float("-inf")
        return failed_at + backoff_seconds(self._attempts.get(key, 1), self._initial_backoff, self._max_backoff)

    def _push_active(self, key: str) -> None:
        self._sequence += 1
        entry = (-self._priority_of(key), self._queued_at.get(key, self._clock.monotonic()), self._sequence, key)
        self._active[key] = entry
        heapq.heappush(self._active_heap, entry)
        self._condition.notify()

    def _push_backoff(self, key: str) -> None:
        ends = self._backoff_ends(key)
        self._sequence += 1
        self._backoff[key] = ends
        heapq.heappush(self._backoff_heap, (ends, self._sequence, key))
        self._condition.notify_all()  # a waiting worker may have to wake earlier than it planned

    # -- taking -------------------------------------------------------------------------------

    def _pop_locked(self) -> str | None:
        """The head of activeQ, as the next attempt (WorkQueue.get marks it in flight)."""
        while self._active_heap:
            entry = heapq.heappop(self._active_heap)
            key = entry[3]
            if self._active.get(key) == entry:
                del self._active[key]
                self._cycle += 1
                self._cycle_of[key] = self._cycle
                self._attempts[key] = self._attempts.get(key, 0) + 1
                return key
        return None

    def done(self, key: str) -> None:
        """The worker is finished with `key`; a pod updated meanwhile and not queued again by
        its attempt goes back to activeQ."""
        with self._condition:
            self._processing.discard(key)
            self._removed_in_flight.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                if not self._shutting_down and key not in self._backoff and key not in self._unschedulable:
                    self._add_locked(key)

    def _promote_due_locked(self) -> float | None:
        """Delayed adds and ended back-offs to activeQ, unschedulable pods past
        MAX_UNSCHEDULABLE_SECONDS moved; the monotonic time the next of them is due, or None."""
        next_due = super()._promote_due_locked()
        now = self._clock.monotonic()
        while self._backoff_heap:
            ends, _, key = self._backoff_heap[0]
            if self._backoff.get(key) != ends:
                heapq.heappop(self._backoff_heap)
                continue
            if ends > now:
                next_due = ends if next_due is None else min(next_due, ends)
                break
            heapq.heappop(self._backoff_heap)
            del self._backoff[key]
            self._push_active(key)
        # Oldest first: a dict keeps insertion order, and a pod enters with the time it entered.
        while self._unschedulable:
            key, since = next(iter(self._unschedulable.items()))
            leftover_at = since + self._max_unschedulable
            if leftover_at > now:
                next_due = leftover_at if next_due is None else min(next_due, leftover_at)
                break
            del self._unschedulable[key]
            self._to_active_or_backoff(key)
        return next_due

    # -- state --------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Pods in activeQ (ready to be tried now)."""
        with self._condition:
            return len(self._active)

    def counts(self) -> dict[str, int]:
        """How many pods wait in each place: active, backoff, unschedulable."""
        with self._condition:
            return {"active": len(self._active), "backoff": len(self._backoff), "unschedulable": len(self._unschedulable)}

    def where(self, key: str) -> str | None:
        """"active", "backoff", "unschedulable", "in flight" or None (not queued)."""
        with self._condition:
            if key in self._processing:
                return "in flight"
            for place, keys in (("active", self._active), ("backoff", self._backoff),
                                ("unschedulable", self._unschedulable)):
                if key in keys:
                    return place
            return None
