"""A local, watch-fed cache of one resource, shared by the controllers that read it.

Controllers must not list the API on every sync: an `Informer` lists a resource once, then
follows its watch, keeping a dict of models keyed `namespace/name` (`name` for cluster-scoped
objects) and telling registered handlers about every add, update and delete. When the watch's
history is gone (410) or the watch breaks, it lists again (with back-off on repeated failures)
and reports the differences as adds, updates and deletes, so handlers never miss a change.
`SharedInformers` hands every controller the same informer per resource, so a pod is held once.
Objects handed out are shared: treat them as read-only (`model_copy(deep=True)` before changing).
For unit tests, `refresh()` lists and applies the differences synchronously, with no thread.

Threads: an informer over HTTP blocks a thread of its own in its watch. An informer of an
in-process client (the daemon's controllers, node agent, proxy, DNS: two dozen of them) does not:
its watch calls back when an event arrives (`ModelWatch.on_ready`), and one `WatchDispatcher`
thread per process applies every such informer's events, a batch at a time, in each informer's
order, as client-go's shared informers do from their own goroutines. Handlers must therefore be
quick (compute a key and enqueue it, as every controller's do) and never wait on another informer.
"""

from __future__ import annotations

import builtins
import heapq
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from minikube_py.api import errors

log = logging.getLogger(__name__)

# Back-off between failed list/watch attempts: 0.2 s doubling up to 30 s, reset by a good list.
RETRY_INITIAL_SECONDS = 0.2
RETRY_MAX_SECONDS = 30.0

# How many watch events the shared dispatcher applies for one informer before turning to the next.
DISPATCH_BATCH = 100


class LabelMatcher(Protocol):
    def matches(self, labels: dict[str, str]) -> bool: ...


def cache_key(obj: Any) -> str:
    """The cache key of a model: `namespace/name`, or `name` for cluster-scoped objects."""
    namespace = obj.metadata.namespace
    return f"{namespace}/{obj.metadata.name}" if namespace else obj.metadata.name


def split_cache_key(key: str) -> tuple[str | None, str]:
    """`namespace/name` -> (namespace, name); `name` -> (None, name)."""
    namespace, _, name = key.rpartition("/")
    return (namespace or None), name


@dataclass
class EventHandler:
    on_add: Callable[[Any], None] | None = None
    on_update: Callable[[Any, Any], None] | None = None
    on_delete: Callable[[Any], None] | None = None


class Informer:
    """List-then-watch cache of one resource (optionally one namespace and label selector)."""

    def __init__(self, client: Any, resource: str, namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None):
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        # kubelet's pod watch is `spec.nodeName=<node>`: a node may read only the pods bound to it.
        self.field_selector = field_selector
        self._selectors = {"label_selector": label_selector} | (
            {"field_selector": field_selector} if field_selector is not None else {})
        self._cache: dict[str, Any] = {}
        self._keys_by_owner_uid: dict[str, set[str]] = {}
        self._handlers: list[EventHandler] = []
        # Readers take `_lock` briefly; `_writer_lock` serialises whoever applies changes (the
        # watch thread or a test's `refresh`) so handlers see changes in order.
        self._lock = threading.Lock()
        self._writer_lock = threading.RLock()
        self._resource_version: str | None = None
        self._synced = threading.Event()
        self._stopped = threading.Event()
        self._watch: Any = None
        self._thread: threading.Thread | None = None
        self._users = 0
        self._users_lock = threading.Lock()
        # Followed by the process's WatchDispatcher instead of a thread of its own (`start`).
        self._dispatched = False
        self._step_lock = threading.Lock()  # held by the dispatcher while it applies this informer's events
        self._needs_list = True
        self._retry_delay = RETRY_INITIAL_SECONDS
        self._applied_since_open = 0

    def __repr__(self) -> str:
        scope = f" in {self.namespace}" if self.namespace else ""
        return f"Informer({self.resource}{scope})"

    # -- handlers -----------------------------------------------------------------------------

    def add_event_handler(
        self,
        on_add: Callable[[Any], None] | None = None,
        on_update: Callable[[Any, Any], None] | None = None,
        on_delete: Callable[[Any], None] | None = None,
    ) -> None:
        """Register callbacks; objects already cached are replayed to `on_add` at once."""
        handler = EventHandler(on_add, on_update, on_delete)
        with self._writer_lock:
            self._handlers.append(handler)
            if on_add is not None:
                for obj in self.list():
                    self._call(on_add, obj)

    def _notify(self, kind: str, *objects: Any) -> None:
        for handler in self._handlers:
            callback = getattr(handler, kind)
            if callback is not None:
                self._call(callback, *objects)

    def _call(self, callback: Callable[..., None], *objects: Any) -> None:
        try:
            callback(*objects)
        except Exception:
            # A handler bug must not stop the cache from following the watch.
            log.exception("%r: event handler %s failed", self, getattr(callback, "__qualname__", callback))

    # -- reading ------------------------------------------------------------------------------

    def get(self, key: str) -> Any | None:
        with self._lock:
            return self._cache.get(key)

    def list(self, namespace: str | None = None, selector: LabelMatcher | None = None) -> list[Any]:
        """Cached objects, optionally only one namespace's and only those `selector` matches."""
        with self._lock:
            objects = list(self._cache.values())
        if namespace is not None:
            objects = [obj for obj in objects if obj.metadata.namespace == namespace]
        if selector is not None:
            objects = [obj for obj in objects if selector.matches(obj.metadata.labels or {})]
        return objects

    def by_owner_uid(self, uid: str) -> builtins.list[Any]:
        """Cached objects that have an ownerReference (controller or not) with this uid."""
        with self._lock:
            return [self._cache[key] for key in self._keys_by_owner_uid.get(uid, ())]

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._cache)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def has_synced(self) -> bool:
        """True once the first list has been applied."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    @property
    def running(self) -> bool:
        """True while the list/watch loop runs (in its own thread or the shared dispatcher)."""
        thread = self._thread
        return self._dispatched or (thread is not None and thread.is_alive())

    @property
    def resource_version(self) -> str | None:
        """The revision the cache reflects (the list's, then each watch event's)."""
        return self._resource_version

    # -- applying changes ---------------------------------------------------------------------

    def _store(self, key: str, obj: Any) -> Any | None:
        with self._lock:
            old = self._cache.get(key)
            if old is not None:
                self._unindex(key, old)
            self._cache[key] = obj
            for reference in obj.metadata.owner_references or ():
                self._keys_by_owner_uid.setdefault(reference.uid, set()).add(key)
            return old

    def _remove(self, key: str) -> Any | None:
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            return old

    def _unindex(self, key: str, obj: Any) -> None:
        for reference in obj.metadata.owner_references or ():
            keys = self._keys_by_owner_uid.get(reference.uid)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_by_owner_uid[reference.uid]

    def refresh(self) -> None:
        """List now and apply the differences to the cache, calling the handlers.

        This is what the watch loop does after 410 Gone or a broken watch; unit tests call it to
        bring the cache up to date without a thread.
        """
        items, resource_version = self.client.list(self.resource, namespace=self.namespace, **self._selectors)
        with self._writer_lock:
            listed = {cache_key(obj): obj for obj in items}
            for key, obj in listed.items():
                old = self._store(key, obj)
                if old is None:
                    self._notify("on_add", obj)
                elif old.metadata.resource_version != obj.metadata.resource_version:
                    self._notify("on_update", old, obj)
            for key in set(self.keys()) - set(listed):
                old = self._remove(key)
                if old is not None:
                    self._notify("on_delete", old)
            self._resource_version = resource_version
            self._synced.set()

    def _apply_event(self, event: Any) -> None:
        event_type = event.type
        if event_type == "ERROR":
            status = event.object if isinstance(event.object, dict) else {}
            raise errors.ApiError.from_status(status)
        obj = event.object
        if event_type == "BOOKMARK":
            self._resource_version = obj.metadata.resource_version
            return
        key = cache_key(obj)
        with self._writer_lock:
            if event_type == "DELETED":
                self._remove(key)
                self._notify("on_delete", obj)
            else:
                old = self._store(key, obj)
                if old is None:
                    self._notify("on_add", obj)
                else:
                    self._notify("on_update", old, obj)
            self._resource_version = obj.metadata.resource_version

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the list/watch loop (in the shared dispatcher for an in-process client, else in a
        daemon thread); each `start` is one user, paired with one `stop` (a shared informer
        keeps running until its last user stops it)."""
        with self._users_lock:
            self._users += 1
            if self._thread is not None or self._dispatched:
                return
            self._stopped.clear()
            if getattr(self.client, "in_process", False):
                self._dispatched = True
                self._needs_list = True
                self._watch = None
                self._retry_delay = RETRY_INITIAL_SECONDS
                IN_PROCESS_DISPATCHER.add(self)
            else:
                self._start_thread()

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"informer-{self.resource}", daemon=True)
        self._thread.start()

    def _step(self) -> None:
        """The dispatcher's turn for this informer: list if needed, open the watch if needed,
        apply up to DISPATCH_BATCH waiting events. The same states as `run`, one step at a time."""
        with self._step_lock:
            if self._stopped.is_set():
                return
            try:
                self._step_once()
            except errors.Gone:
                log.info("%r: resourceVersion %s is compacted away; listing again", self, self._resource_version)
                self._drop_watch()
                self._needs_list = True
                IN_PROCESS_DISPATCHER.wake(self)
            except Exception as error:
                if self._stopped.is_set():
                    return
                log.warning("%r: list/watch failed (%s); listing again in %.1fs", self, error, self._retry_delay)
                self._drop_watch()
                self._needs_list = True
                self._retry_later()

    def _step_once(self) -> None:
        if self._needs_list:
            self.refresh()
            self._needs_list = False
            self._retry_delay = RETRY_INITIAL_SECONDS
        if self._watch is None:
            watch = self.client.watch(self.resource, namespace=self.namespace,
                                      resource_version=self._resource_version, **self._selectors)
            self._watch, self._applied_since_open = watch, 0
            if not watch.on_ready(lambda: IN_PROCESS_DISPATCHER.wake(self)):
                log.warning("%r: this watch cannot signal its events; following it from a thread of its own", self)
                self._drop_watch()
                with self._users_lock:
                    IN_PROCESS_DISPATCHER.remove(self)
                    self._dispatched = False
                    if not self._stopped.is_set():
                        self._start_thread()
                return
        watch = self._watch
        applied = 0
        while applied < DISPATCH_BATCH and not self._stopped.is_set():
            event = watch.next(0)
            if event is None:
                break
            self._apply_event(event)
            applied += 1
        self._applied_since_open += applied
        if applied == DISPATCH_BATCH:
            IN_PROCESS_DISPATCHER.wake(self)  # more may wait: after the other informers' turns
        elif watch.closed:
            self._drop_watch()
            if self._applied_since_open > 0:
                self._retry_delay = RETRY_INITIAL_SECONDS
                IN_PROCESS_DISPATCHER.wake(self)
            else:  # ended without a single event: re-open after a pause, never in a tight loop
                self._retry_later()

    def _retry_later(self) -> None:
        IN_PROCESS_DISPATCHER.wake_after(self, self._retry_delay)
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_SECONDS)

    def _drop_watch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            _close_quietly(watch)

    def run(self) -> None:
        """List, then follow the watch until `stop()`; re-list after Gone or a failure."""
        needs_list = True
        retry_delay = RETRY_INITIAL_SECONDS
        while not self._stopped.is_set():
            try:
                if needs_list:
                    self.refresh()
                    needs_list = False
                    retry_delay = RETRY_INITIAL_SECONDS
                if self._follow_watch() > 0:
                    retry_delay = RETRY_INITIAL_SECONDS
                    continue
                # A watch that ended without a single event (a server hanging up at once, or an
                # idle stream timing out) is re-opened after a pause, never in a tight loop.
                self._stopped.wait(retry_delay)
                retry_delay = min(retry_delay * 2, RETRY_MAX_SECONDS)
            except errors.Gone:
                log.info("%r: resourceVersion %s is compacted away; listing again", self, self._resource_version)
                needs_list = True
            except Exception as error:
                if self._stopped.is_set():
                    break
                log.warning("%r: list/watch failed (%s); listing again in %.1fs", self, error, retry_delay)
                needs_list = True
                self._stopped.wait(retry_delay)
                retry_delay = min(retry_delay * 2, RETRY_MAX_SECONDS)

    def _follow_watch(self) -> int:
        """Apply watch events until the watch ends or `stop()`; how many events there were."""
        watch = self.client.watch(
            self.resource,
            namespace=self.namespace,
            resource_version=self._resource_version,
            **self._selectors,
        )
        self._watch = watch
        applied = 0
        try:
            if self._stopped.is_set():
                return applied
            for event in watch:
                if self._stopped.is_set():
                    break
                self._apply_event(event)
                applied += 1
        finally:
            self._watch = None
            _close_quietly(watch)
        return applied

    def stop(self, timeout: float = 5.0) -> None:
        """Release one `start`; the last one ends the watch loop and waits for its thread."""
        with self._users_lock:
            self._users = max(self._users - 1, 0)
            if self._users > 0:
                return
            self._stopped.set()
            thread, self._thread = self._thread, None
            dispatched, self._dispatched = self._dispatched, False
        if dispatched:
            IN_PROCESS_DISPATCHER.remove(self)
        watch = self._watch
        if watch is not None:
            _close_quietly(watch)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if dispatched and not IN_PROCESS_DISPATCHER.is_current_thread():
            # Let a step in progress finish, so no handler runs after `stop` returns.
            if self._step_lock.acquire(timeout=timeout):
                self._step_lock.release()


def _close_quietly(watch: Any) -> None:
    close = getattr(watch, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        log.debug("closing a watch failed", exc_info=True)


class WatchDispatcher:
    """One thread following many in-process informers: each informer's watch wakes it when an
    event arrives, and it gives each woken informer a step (`Informer._step`) in turn; retries
    after failures wait in a timer heap. The thread exists while an informer is registered."""

    def __init__(self, name: str = "informers"):
        self.name = name
        self._condition = threading.Condition(threading.Lock())
        self._members: set[Informer] = set()
        self._ready: deque[Informer] = deque()
        self._queued: set[Informer] = set()
        self._later: builtins.list[tuple[float, int, Informer]] = []
        self._sequence = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, informer: Informer) -> None:
        with self._condition:
            self._members.add(informer)
            self._queue(informer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def remove(self, informer: Informer) -> None:
        with self._condition:
            self._members.discard(informer)
            self._condition.notify()

    def wake(self, informer: Informer) -> None:
        """Give `informer` a step soon. Called by watches under the store's writer lock: it only
        notes the informer and never blocks on anything but this dispatcher's own short lock."""
        with self._condition:
            self._queue(informer)

    def wake_after(self, informer: Informer, delay: float) -> None:
        with self._condition:
            heapq.heappush(self._later, (time.monotonic() + delay, next(self._sequence), informer))
            self._condition.notify()

    def is_current_thread(self) -> bool:
        return self._thread is threading.current_thread()

    def _queue(self, informer: Informer) -> None:
        if informer in self._members and informer not in self._queued:
            self._queued.add(informer)
            self._ready.append(informer)
            self._condition.notify()

    def _next(self) -> Informer | None:
        """The next informer due a step, waiting for one; None once no informer is registered."""
        with self._condition:
            while True:
                if not self._members:
                    self._thread = None
                    self._ready.clear()
                    self._queued.clear()
                    self._later.clear()
                    return None
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    self._queue(heapq.heappop(self._later)[2])
                if self._ready:
                    informer = self._ready.popleft()
                    self._queued.discard(informer)
                    if informer in self._members:
                        return informer
                    continue
                self._condition.wait(self._later[0][0] - now if self._later else None)

    def _run(self) -> None:
        while (informer := self._next()) is not None:
            try:
                informer._step()
            except Exception:  # _step handles its own failures; this keeps the other informers going regardless
                log.exception("%r: a dispatcher step failed", informer)


# Every informer of an in-process client in this process shares this one thread.
IN_PROCESS_DISPATCHER = WatchDispatcher()


class SharedInformers:
    """One informer per (resource, namespace, label selector), shared by every controller.

    `shared_informers(client)` returns the set belonging to a client, so controllers built
    separately with the same client share caches without being handed the set.
    """

    def __init__(self, client: Any):
        self.client = client
        self._informers: dict[tuple[str, str | None, str | None], Informer] = {}
        self._lock = threading.Lock()
        self._started = False

    def informer(self, resource: str, namespace: str | None = None, label_selector: str | None = None) -> Informer:
        key = (resource, namespace, label_selector)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                informer = self._informers[key] = Informer(self.client, resource, namespace, label_selector)
                if self._started:
                    informer.start()
            return informer

    def all(self) -> list[Informer]:
        with self._lock:
            return list(self._informers.values())

    def start(self) -> None:
        """Start every informer, and any asked for later (one `start` each, undone by `stop`)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            informers = list(self._informers.values())
        for informer in informers:
            informer.start()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return wait_for_informers(self.all(), timeout)

    def refresh(self) -> None:
        """Bring every cache up to date synchronously (for unit tests)."""
        for informer in self.all():
            informer.refresh()

    def stop(self) -> None:
        """Undo `start`; informers that controllers still run keep running until they stop."""
        with self._lock:
            if not self._started:
                return
            self._started = False
            informers = list(self._informers.values())
        for informer in informers:
            informer.stop()


_shared_by_client: "weakref.WeakKeyDictionary[Any, SharedInformers]" = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def shared_informers(client: Any) -> SharedInformers:
    """The SharedInformers of `client`, made on first use."""
    with _shared_lock:
        informers = _shared_by_client.get(client)
        if informers is None:
            informers = _shared_by_client[client] = SharedInformers(client)
        return informers


def wait_for_informers(informers: Iterable[Informer], timeout: float | None = None) -> bool:
    """Wait until every informer has listed once; False if `timeout` passed first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for informer in informers:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if not informer.wait_for_sync(remaining):
            return False
    return True
