"""EndpointSlices by the Service they belong to, kept from an informer's events.

An EndpointSlice names its Service in the `kubernetes.io/service-name` label. The service proxy
and cluster DNS both ask "the slices of Service ns/name" on every change or query; listing the
whole cache and filtering costs time in proportion to every slice in the cluster, so this index
keeps the answer ready. It holds cache keys only and reads the objects from the informer, so it
never serves an object the cache no longer has.
"""

from __future__ import annotations

import threading
from typing import Any

from minikube_py.client.informer import Informer, cache_key

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

ServiceKey = tuple[str, str]  # (namespace, name)


def slice_service(endpoint_slice: Any) -> ServiceKey | None:
    """The (namespace, name) of the Service an EndpointSlice belongs to, if it names one."""
    name = (endpoint_slice.metadata.labels or {}).get(SERVICE_NAME_LABEL)
    return (endpoint_slice.metadata.namespace, name) if name else None


class EndpointSliceIndex:
    """The EndpointSlices of each Service, from `informer`'s events (its cache is replayed at once).

    Create it before registering handlers that read it, so it is up to date when they run."""

    def __init__(self, informer: Informer):
        self.informer = informer
        self._lock = threading.Lock()
        self._keys: dict[ServiceKey, set[str]] = {}
        informer.add_event_handler(self.add, self.update, self.delete)

    def add(self, endpoint_slice: Any) -> None:
        owner = slice_service(endpoint_slice)
        if owner is not None:
            with self._lock:
                self._keys.setdefault(owner, set()).add(cache_key(endpoint_slice))

    def delete(self, endpoint_slice: Any) -> None:
        owner = slice_service(endpoint_slice)
        if owner is not None:
            with self._lock:
                keys = self._keys.get(owner, set())
                keys.discard(cache_key(endpoint_slice))
                if not keys:
                    self._keys.pop(owner, None)

    def update(self, old: Any, new: Any) -> None:
        if slice_service(old) != slice_service(new):
            self.delete(old)
        self.add(new)

    def slices(self, namespace: str, name: str) -> list[Any]:
        """The Service's EndpointSlices in the cache now."""
        with self._lock:
            keys = list(self._keys.get((namespace, name), ()))
        found = (self.informer.get(key) for key in keys)
        return [item for item in found if item is not None and slice_service(item) == (namespace, name)]
