"""What every store backend is: the contract the API server's Registry is written against.

Two backends implement it: `Store` (sqlite, embedded, the default; store.py) and `EtcdStore`
(etcd v3, for several API servers on one replicated store; etcd.py). The contract is
Kubernetes' storage interface cut down to what we use: objects as wire dicts keyed by
(resource, namespace or "", name), one global revision that is every object's resourceVersion,
compare-and-swap on it, watches from a revision in revision order with 410 Gone below the
compacted revision, compaction, and a small lease book for allocators. The same conformance
tests (tests/unit/test_store_*.py) run against both. The errors every backend raises with the
same words live here too.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Callable, Iterable, Protocol

from minikube_py import api
from minikube_py.api import errors
from minikube_py.store.watch import Watcher

log = logging.getLogger(__name__)


class PoolExhausted(Exception):
    """Every candidate value of a lease pool is already held by some owner."""


def resource_label(resource: str) -> str:
    """The resource as Kubernetes names it in messages: `pods`, `deployments.apps`."""
    info = api.RESOURCES.get(resource)
    return info.qualified_plural if info is not None else resource


def status_details(resource: str, name: str) -> dict:
    """A Status's `details` for one object, as Kubernetes fills them: the name, the API group
    (left out for the core group) and, in `kind`, the resource."""
    info = api.RESOURCES.get(resource)
    group = info.api_version.rpartition("/")[0] if info is not None else ""
    return {"name": name, **({"group": group} if group else {}), "kind": resource}


def not_found(resource: str, name: str) -> errors.NotFound:
    return errors.NotFound(f'{resource_label(resource)} "{name}" not found', status_details(resource, name))


def already_exists(resource: str, name: str) -> errors.AlreadyExists:
    return errors.AlreadyExists(f'{resource_label(resource)} "{name}" already exists',
                                status_details(resource, name))


def conflict(resource: str, name: str) -> errors.Conflict:
    return errors.Conflict(
        f'Operation cannot be fulfilled on {resource_label(resource)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        status_details(resource, name))


def too_old(since: int, oldest: int) -> errors.Gone:
    return errors.Gone(f"too old resource version: {since} ({oldest})")


def pool_exhausted(pool: str, held: int) -> PoolExhausted:
    return PoolExhausted(f"lease pool {pool!r}: all {held} values are held; "
                         "release some (delete pods) or widen the pool")


def namespace_and_name(obj: dict) -> tuple[str, str]:
    """The key of a wire object within its resource ('' for cluster-scoped); the name is required."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        raise errors.BadRequest("metadata.name: required; give the object a name before storing it")
    return metadata.get("namespace") or "", name


class ObjectStore(Protocol):
    """The store contract (docs/architecture.md, "store"). Revisions are ints; resourceVersions
    on objects are their decimal strings."""

    @property
    def revision(self) -> int: ...

    @property
    def compacted_revision(self) -> int: ...

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None: ...

    def list(self, resource: str, namespace: str | None = None) -> tuple[list[dict], int]: ...

    def count(self, resource: str, namespace: str | None = None) -> int: ...

    def revisions(self, resource: str) -> dict[tuple[str, str], int]: ...

    def create(self, resource: str, obj: dict) -> dict: ...

    def update(self, resource: str, obj: dict, expected_rv: str | int | None = None) -> dict: ...

    def delete(self, resource: str, namespace: str | None, name: str,
               expected_rv: str | int | None = None) -> dict: ...

    def watch(self, resource: str | None, namespace: str | None = None,
              since: str | int | None = None) -> Watcher: ...

    def compact(self, keep: int = 1000) -> int: ...

    def start_compactor(self, interval: float, keep: int = 1000) -> None: ...

    def allocate(self, pool: str, candidates: Iterable, owner: str) -> str: ...

    def release(self, pool: str, owner: str) -> str | None: ...

    def allocations(self, pool: str) -> dict[str, str]: ...

    def close(self) -> None: ...


class InMemoryState:
    """What both backends keep in memory: every object as its JSON text with its resourceVersion
    (resource -> (namespace, name) -> (revision, text)), which reads are served from without
    touching the disk or the network, and the watchers changes are handed to. Both change only
    under `_lock`, after the backend has committed."""

    _lock: threading.Lock
    _objects: dict[str, dict[tuple[str, str], tuple[int, str]]]
    _revision: int
    _compacted_revision: int
    _watchers: list[Watcher]

    def _forget_watcher(self, watcher: Watcher) -> None:
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compacted_revision(self) -> int:
        return self._compacted_revision

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        stored = self._objects.get(resource, {}).get((namespace or "", name))
        return json.loads(stored[1]) if stored is not None else None

    def list(self, resource: str, namespace: str | None = None) -> tuple[list[dict], int]:
        """Objects of one resource, all namespaces when `namespace` is None, ordered by
        namespace then name, with the revision they are current at."""
        with self._lock:
            objects = self._objects.get(resource, {})
            texts = [text for key, (_, text) in sorted(objects.items())
                     if namespace is None or key[0] == namespace]
            revision = self._revision
        return [json.loads(text) for text in texts], revision

    def revisions(self, resource: str) -> dict[tuple[str, str], int]:
        """Each object's revision by (namespace, name), without parsing them: what changed since
        a caller last looked."""
        with self._lock:
            return {key: revision for key, (revision, _) in self._objects.get(resource, {}).items()}

    def count(self, resource: str, namespace: str | None = None) -> int:
        """How many objects of a resource there are (in one namespace), without parsing them."""
        objects = self._objects.get(resource, {})
        if namespace is None:
            return len(objects)
        return sum(1 for key in list(objects) if key[0] == namespace)


class Compactor:
    """Calls `compact(keep)` every `interval` seconds in the `store-compactor` thread until
    stopped; a failed compaction (a full disk, an etcd without quorum) is tried again next time."""

    def __init__(self, compact: Callable[[int], int], interval: float, keep: int):
        self._compact = compact
        self._interval = interval
        self._keep = keep
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-compactor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._compact(self._keep)
            except errors.ApiError as error:
                log.warning("compacting the store failed: %s", error.message)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
