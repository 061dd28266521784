"""The one shape every controller has: informers feed keys into a work queue, workers sync keys.

A subclass registers event handlers on shared informers that do nothing but compute a key and
`enqueue` it, and implements `sync(key)`: read the full current state from the caches, act,
write status, and return None (done) or a number of seconds after which to look again. An
exception retries the key with per-key exponential back-off and drops it after `max_retries`
with a log line (a later event for the key brings it back). `run()` starts worker threads;
unit tests skip threads and drive the queue with `process_one()` / `drain()`.

A controller whose sync reads every pod of a namespace (ReplicaSet, Deployment) sets
`pace_slow_syncs`: a key whose last sync took d >= PACING_THRESHOLD_SECONDS is not synced again,
on an event, until PACING_FACTOR * d has passed. Level-triggered syncs lose nothing by the wait:
the events of that time are folded into one sync (as the endpoints controllers' batch period does
in Kubernetes), so one key takes at most a tenth of a core while a thousand pods change at once,
instead of re-reading all of them for each pod's every status change. Syncs of a few dozen pods
stay under the threshold and are never delayed. Time a sync spends acting (`with self.unpaced():`
around creating or deleting pods) does not count: only reading and computing is paced, so the
next batch of a thousand-pod scale never waits ten times as long as the last batch took.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Callable, Generic, Iterator

from minikube_py.api.errors import ApiError
from minikube_py.clock import Clock
from minikube_py.client.informer import Informer, wait_for_informers
from minikube_py.client.workqueue import KeyT, WorkQueue

log = logging.getLogger(__name__)

# client-go controllers give up on a key after this many consecutive failed syncs.
MAX_RETRIES = 15

# How often a worker that is waiting for the caches checks whether it should stop instead.
SYNC_WAIT_POLL_SECONDS = 0.5

# A sync at least this long makes the next event-driven sync of its key wait PACING_FACTOR times as long.
PACING_THRESHOLD_SECONDS = 0.001
PACING_FACTOR = 10


class Controller(Generic[KeyT]):
    """Base class: a named work queue, the informers it reads, and N workers running `sync`."""

    max_retries = MAX_RETRIES
    pace_slow_syncs = False

    def __init__(self, name: str, clock: Clock | None = None, workers: int = 1):
        self.name = name
        self.clock = clock or Clock()
        self.workers = workers
        self.queue: WorkQueue[KeyT] = WorkQueue(self.clock, name)
        self.informers: list[Informer] = []
        self._threads: list[threading.Thread] = []
        self._started_informers: list[Informer] = []
        self._stopping = threading.Event()
        # key -> monotonic time before which an event does not sync it again (pace_slow_syncs).
        self._paced_until: dict[KeyT, float] = {}
        self._paced_lock = threading.Lock()
        # Per worker thread: seconds of the running sync spent inside `unpaced()` blocks.
        self._sync_thread = threading.local()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"

    def watch(
        self,
        informer: Informer,
        on_add: Callable[[Any], None] | None = None,
        on_update: Callable[[Any, Any], None] | None = None,
        on_delete: Callable[[Any], None] | None = None,
    ) -> Informer:
        """Read from `informer` (workers wait for its first list) and register handlers on it."""
        if informer not in self.informers:
            self.informers.append(informer)
        if on_add or on_update or on_delete:
            informer.add_event_handler(on_add, on_update, on_delete)
        return informer

    def enqueue(self, key: KeyT) -> None:
        with self._paced_lock:
            paced_until = self._paced_until.get(key)
        wait = paced_until - self.clock.monotonic() if paced_until is not None else 0.0
        if wait > 0:
            self.queue.add_after(key, wait)
        else:
            self.queue.add(key)

    def enqueue_after(self, key: KeyT, delay: float) -> None:
        self.queue.add_after(key, delay)

    def sync(self, key: KeyT) -> float | None:
        """Reconcile one key; return None when done or seconds until it should be synced again."""
        raise NotImplementedError(f"{type(self).__name__} must implement sync(key)")

    # -- driving the queue --------------------------------------------------------------------

    def process_one(self, timeout: float | None = 0.0) -> bool:
        """Take one key (waiting up to `timeout`), sync it, and settle its retry state.

        Returns False when no key came (timeout or shutdown).
        """
        key = self.queue.get(timeout)
        if key is None:
            return False
        try:
            self._sync_and_settle(key)
        finally:
            self.queue.done(key)
        return True

    @contextmanager
    def unpaced(self) -> Iterator[None]:
        """A part of `sync` that acts (API writes) rather than reads: pacing leaves its time out."""
        started = self.clock.monotonic()
        try:
            yield
        finally:
            self._sync_thread.unpaced = getattr(self._sync_thread, "unpaced", 0.0) + self.clock.monotonic() - started

    def _sync_and_settle(self, key: KeyT) -> None:
        self._sync_thread.unpaced = 0.0
        started = self.clock.monotonic()
        try:
            requeue_after = self.sync(key)
        except Exception as error:
            retries = self.queue.num_requeues(key)
            if retries < self.max_retries:
                log.info("%s: sync of %s failed (retry %d): %s", self.name, key, retries + 1, error,
                         exc_info=not isinstance(error, ApiError))
                self.queue.add_rate_limited(key)
            else:
                log.error("%s: dropping %s out of the queue after %d failed syncs: %s",
                          self.name, key, retries + 1, error)
                self.queue.forget(key)
            return
        self.queue.forget(key)
        if self.pace_slow_syncs:
            self._pace(key, started)
        if requeue_after is not None:
            self.queue.add_after(key, requeue_after)

    def _pace(self, key: KeyT, started: float) -> None:
        finished = self.clock.monotonic()
        reading = finished - started - getattr(self._sync_thread, "unpaced", 0.0)
        with self._paced_lock:
            if reading >= PACING_THRESHOLD_SECONDS:
                self._paced_until[key] = finished + PACING_FACTOR * reading
            else:
                self._paced_until.pop(key, None)

    def drain(self, max_items: int = 10_000) -> int:
        """Process keys until none is ready now (delayed keys wait for their time); for tests.

        Returns how many syncs ran. `max_items` guards a test against a controller that keeps
        re-adding a key.
        """
        processed = 0
        while processed < max_items and self.process_one(timeout=0.0):
            processed += 1
        return processed

    # -- threads ------------------------------------------------------------------------------

    def run(self) -> None:
        """Start the informers (shared ones count this controller as a user) and `workers`
        worker threads; returns at once. A controller runs once: `stop` is final."""
        self._stopping.clear()
        for informer in self.informers:
            informer.start()
        self._started_informers = list(self.informers)
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"{self.name}-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while not wait_for_informers(self.informers, SYNC_WAIT_POLL_SECONDS):
            if self._stopping.is_set():
                return
        while not self._stopping.is_set():
            try:
                if not self.process_one(timeout=None):
                    return
            except Exception:
                # Sync errors are settled in _sync_and_settle; this is anything else: the worker stays.
                log.exception("%s: worker error outside a sync; carrying on", self.name)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers (a sync in progress finishes first), then release the informers
        `run` started; an informer stops when its last user has released it."""
        self._stopping.set()
        self.queue.shut_down()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        self._threads.clear()
        for informer in self._started_informers:
            informer.stop(timeout)
        self._started_informers = []
