"""Watch streams out of the store: what one watcher has been sent and is still waiting for.

The store hands every committed change to the watchers whose resource and namespace match,
while it still holds its writer lock, so each watcher sees changes in strict revision order and
none is missed between a watcher's replay of the log and its first live event. A watcher keeps
the JSON text of the change and parses it only when its reader asks, so a change nobody reads
costs one append. Readers block on the watcher's own condition; nothing polls.

Every watcher of a change reads the same text, so the parsed object is shared: the last
DECODED_CACHE_SIZE texts parsed are kept, and fifty kubelets' watches of the pods (each filtering
by its node) parse a pod's write once, not fifty times. Readers must therefore treat an event's
objects as read-only (the API server's watch, the typed client's models and list rollback do).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, NamedTuple

from minikube_py.api import errors
from minikube_py.api.watch import EventStream

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

# A watcher whose reader stops reading would otherwise hold every later change in memory.
# Kubernetes ends such watches too; the client re-lists and watches again.
MAX_PENDING_EVENTS = 100_000

# Parsed change texts kept for the other watchers of the same change (see the module docstring).
DECODED_CACHE_SIZE = 256


@lru_cache(maxsize=DECODED_CACHE_SIZE)
def _decoded(text: str) -> dict:
    """The object of a change's JSON text, parsed once for every watcher that reads it."""
    return json.loads(text)


@dataclass(frozen=True)
class WatchEvent:
    """One change: the object after it (for DELETED, its last state at the deletion's
    revision), the object before it when there was one, and where it happened."""

    type: str
    object: dict
    revision: int
    resource: str
    previous: dict | None = None


class LogEntry(NamedTuple):
    """A change as the store records it, objects still as JSON text."""

    revision: int
    resource: str
    namespace: str
    name: str
    type: str
    data: str
    previous_data: str | None

    def to_event(self) -> WatchEvent:
        """The change with its objects parsed; they are shared with the change's other watchers."""
        previous = _decoded(self.previous_data) if self.previous_data is not None else None
        return WatchEvent(self.type, _decoded(self.data), self.revision, self.resource, previous)


class Watcher(EventStream):
    """Changes to one resource (or every resource when `resource` is None), optionally in one
    namespace, in revision order. `next(timeout)` returns the next event or None on timeout
    or once closed; iterating blocks until an event arrives and stops when closed."""

    def __init__(self, resource: str | None, namespace: str | None, backlog: list[LogEntry],
                 on_close: Callable[["Watcher"], None], since: int = 0):
        self.resource = resource
        self.namespace = namespace
        self.since = since
        self._pending: deque[LogEntry] = deque(backlog)
        self._condition = threading.Condition(threading.Lock())
        self._closed = False
        self._error: errors.ApiError | None = None
        self._on_close = on_close
        self._on_ready: Callable[[], None] | None = None

    def matches(self, entry: LogEntry) -> bool:
        return (entry.revision > self.since
                and (self.resource is None or entry.resource == self.resource)
                and (self.namespace is None or entry.namespace == self.namespace))

    def deliver(self, entry: LogEntry) -> None:
        """Called by the store, under its writer lock, for every change this watcher matches."""
        with self._condition:
            if self._closed:
                return
            if len(self._pending) >= MAX_PENDING_EVENTS:
                self._end_with(errors.Gone(
                    f"watch of {self.resource or 'all resources'} fell {MAX_PENDING_EVENTS} events "
                    "behind and was closed; list again and watch from the list's resourceVersion"))
            else:
                self._pending.append(entry)
                self._condition.notify_all()
            self._signal_ready()

    def on_ready(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` whenever an event arrives or the watcher ends (and now, if one is
        already waiting), so one thread can follow many watchers with `next(0)` instead of
        blocking a thread in each. It runs under the store's writer lock: it must only note
        the watcher as ready (set an event, append to a queue), never read or block."""
        with self._condition:
            self._on_ready = callback
            if callback is not None and (self._pending or self._closed):
                callback()

    def _signal_ready(self) -> None:
        if self._on_ready is not None:
            self._on_ready()

    def expire(self, error: errors.ApiError) -> None:
        """End the watch: its reader gets `error` (a Gone: list again) instead of more events."""
        with self._condition:
            if not self._closed:
                self._end_with(error)

    def _end_with(self, error: errors.ApiError) -> None:
        self._pending.clear()
        self._error = error
        self._closed = True
        self._condition.notify_all()
        self._signal_ready()

    @property
    def closed(self) -> bool:
        return self._closed

    def next(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event, waiting up to `timeout` seconds (None waits for ever).

        Returns None on timeout or when the watcher is closed and drained; raises `Gone` if
        the watcher was closed because its reader fell too far behind."""
        with self._condition:
            if not self._pending and not self._closed:
                self._condition.wait_for(lambda: self._pending or self._closed, timeout)
            if self._pending:
                entry = self._pending.popleft()
            elif self._error is not None:
                raise self._error
            else:
                return None
        return entry.to_event()

    def close(self) -> None:
        with self._condition:
            if self._closed:
                return
            self._closed = True
            self._pending.clear()
            self._condition.notify_all()
        self._on_close(self)

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
