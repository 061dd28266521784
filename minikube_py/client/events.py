"""Events: the short notes components leave on objects (`kubectl describe` shows them).

Controllers, the scheduler and the agent record what they did or failed to do
(`SuccessfulCreate`, `Scheduled`, `BackOff`, ...) as core/v1 Event objects pointing at the
object concerned. Like client-go's recorder, an identical event (same object, type, reason and
message from the same component) bumps `count` and `lastTimestamp` on the Event already stored
instead of creating another, however long ago that was, for as long as the recorder remembers it
and the Event still exists, so a crash loop shows as one row "(x40 over 3h)" and does not flood
the store. Recordings of the same event are made one at a time, as client-go's single broadcaster
goroutine makes them: two threads reporting it at once would otherwise both create it, and their
count patches could land out of order. Different events are recorded in parallel (a lock per
correlation key while it is being recorded): a node starting a thousand pods writes three events
for each, and one lock for all of them made every pod start wait for the others' writes. Recording is best effort:
failures are logged, never raised into the caller's sync.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from minikube_py.api import errors
from minikube_py.api.times import format_time
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"

# How many distinct recent events a recorder remembers for folding (client-go: 4096, LRU).
REMEMBERED_EVENTS = 4096
# Event names are `<object>.<nanoseconds hex>`; on a name clash, try the next nanosecond.
NAME_CLASH_RETRIES = 5


@dataclass
class _StoredEvent:
    namespace: str
    name: str
    count: int


@dataclass
class _KeyLock:
    """Serializes the recordings of one event; dropped when nobody records it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class EventRecorder:
    """Records Events for one component (`replicaset-controller`, `default-scheduler`, ...)."""

    def __init__(self, client: Any, component: str, clock: Clock | None = None, host: str | None = None):
        self.client = client
        self.component = component
        self.clock = clock or Clock()
        self.host = host or socket.gethostname()
        self._recent: OrderedDict[tuple[Any, ...], _StoredEvent] = OrderedDict()
        # A key's lock is held for a whole recording of that event (lookup, API write, remembering);
        # `_state` only for the short reads and writes of the shared memory.
        self._state = threading.Lock()
        self._recording: dict[tuple[Any, ...], _KeyLock] = {}
        self._last_name_nanoseconds = 0

    def event(self, obj: Any, event_type: str, reason: str, message: str, field_path: str | None = None) -> None:
        """Record that `reason`/`message` happened to `obj` (to the part of it `field_path` names,
        as kubelet names a pod's container: `spec.containers{web}`); never raises."""
        try:
            metadata = obj.metadata
            correlation_key = (metadata.uid, obj.kind, metadata.namespace, metadata.name, field_path, event_type,
                               reason, message)
            with self._state:
                key_lock = self._recording.setdefault(correlation_key, _KeyLock())
                key_lock.users += 1
            try:
                with key_lock.lock:
                    self._record(obj, correlation_key, event_type, reason, message, field_path)
            finally:
                with self._state:
                    key_lock.users -= 1
                    if not key_lock.users:
                        del self._recording[correlation_key]
        except Exception as error:
            log.warning("%s: could not record event %s on %s %s/%s: %s", self.component, reason,
                        getattr(obj, "kind", "object"), obj.metadata.namespace, obj.metadata.name, error)

    def _record(self, obj: Any, correlation_key: tuple[Any, ...], event_type: str, reason: str, message: str,
                field_path: str | None) -> None:
        timestamp = format_time(self.clock.now())
        with self._state:
            stored = self._recent.get(correlation_key)
        if stored is not None:
            try:
                self.client.patch(
                    "events", stored.name, {"count": stored.count + 1, "lastTimestamp": timestamp},
                    namespace=stored.namespace)
                with self._state:
                    stored.count += 1
                    if correlation_key in self._recent:
                        self._recent.move_to_end(correlation_key)
                return
            except errors.NotFound:
                pass  # somebody deleted it; start a new one below
        created = self._create(obj, event_type, reason, message, timestamp, field_path)
        with self._state:
            self._recent[correlation_key] = created
            self._recent.move_to_end(correlation_key)
            while len(self._recent) > REMEMBERED_EVENTS:
                self._recent.popitem(last=False)

    def _create(self, obj: Any, event_type: str, reason: str, message: str, timestamp: str,
                field_path: str | None) -> _StoredEvent:
        """Create the Event. It goes to the API as the wire dict the server validates, and the
        answer is not parsed: a recorder needs only the name it chose, and the two model
        conversions were most of the cost of an event to a component that writes one per pod."""
        metadata = obj.metadata
        # Events about cluster-scoped objects (nodes) live in `default`, as in Kubernetes.
        namespace = metadata.namespace or "default"
        involved = {"apiVersion": obj.api_version, "kind": obj.kind, "namespace": metadata.namespace,
                    "name": metadata.name, "uid": metadata.uid, "resourceVersion": metadata.resource_version,
                    "fieldPath": field_path}
        for _ in range(NAME_CLASH_RETRIES):
            name = f"{metadata.name}.{self._next_name_suffix()}"
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {key: value for key, value in involved.items() if value is not None},
                "type": event_type,
                "reason": reason,
                "message": message,
                "count": 1,
                "firstTimestamp": timestamp,
                "lastTimestamp": timestamp,
                "source": {"component": self.component, "host": self.host},
                "reportingComponent": self.component,
                "reportingInstance": self.host,
            }
            try:
                self.client.raw.create("events", namespace, event)
            except errors.AlreadyExists:
                continue
            return _StoredEvent(namespace, name, 1)
        raise errors.AlreadyExists(f"events: {NAME_CLASH_RETRIES} generated names for {metadata.name} were taken")

    def _next_name_suffix(self) -> str:
        # Kubernetes names events `<object>.<unix nanoseconds in hex>`; keep them strictly
        # increasing so two events in one clock tick (a FakeClock never ticks) get distinct names.
        with self._state:
            nanoseconds = max(int(self.clock.now() * 1e9), self._last_name_nanoseconds + 1)
            self._last_name_nanoseconds = nanoseconds
        return format(nanoseconds, "x")
