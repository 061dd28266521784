"""Server-side dry run (`?dryRun=All`): every write verb runs as usual and stores nothing.

kube-apiserver runs admission, defaulting and validation for a dry-run request and skips only the
final storage write (its `DryRunnableStorage`); the answer is the object as it would have been
stored. We do the same by giving the Registry, for one request, a store whose reads are the real
store's and whose writes only check what the real write would check (the object exists, the
resourceVersion still matches, the address is free) and hand back what it would have written.
No code path of the Registry knows about dry run, so a dry-run answer cannot drift from a real one,
and since nothing reaches the real store no watch event can be sent.

What each simulated write answers, as kube-apiserver's storage does:
- create: the object without a resourceVersion (nothing was committed to give it one);
- update: the new object with the stored resourceVersion;
- delete: the stored object (with any deletionTimestamp the graceful path set);
- IP and port allocation: a free value of the pool, left free.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

from minikube_py.api import errors
from minikube_py.store import PoolExhausted, conflict, not_found
from minikube_py.store.interface import already_exists, namespace_and_name

DRY_RUN_ALL = "All"


def dry_run_values(query: dict, body: Any, options_kind: str) -> bool:
    """Whether a request asks for dry run: `dryRun` in the query, or (DELETE) in its
    DeleteOptions body. Any value but `All` is kube-apiserver's 422 for the verb's options."""
    values = [value for value in query.get("dryRun", [])]
    if isinstance(body, dict) and body.get("kind") in (None, "DeleteOptions") and options_kind == "DeleteOptions":
        asked = body.get("dryRun")
        if asked is not None:
            if not isinstance(asked, list) or not all(isinstance(value, str) for value in asked):
                raise errors.BadRequest(f"DeleteOptions dryRun: {asked!r} must be a list of strings such as [\"All\"]")
            values += asked
    unsupported = [value for value in values if value != DRY_RUN_ALL]
    if unsupported:
        shown = "[]string{" + ", ".join(f'"{value}"' for value in values) + "}"
        message = f'Unsupported value: {shown}: supported values: "{DRY_RUN_ALL}"'
        raise errors.Invalid(f'{options_kind}.meta.k8s.io "" is invalid: dryRun: {message}', [("dryRun", message)],
                             {"group": "meta.k8s.io", "kind": options_kind,
                              "causes": [{"reason": "FieldValueNotSupported", "message": message,
                                          "field": "dryRun"}]})
    return bool(values)


class DryRunStore:
    """The real store for reads; writes checked against it and never made. One per request."""

    def __init__(self, store: Any):
        self._store = store
        self._held: dict[str, set[str]] = {}  # pool -> values this request would have taken

    # -- reads go to the real store

    @property
    def revision(self) -> int:
        return self._store.revision

    @property
    def compacted_revision(self) -> int:
        return self._store.compacted_revision

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        return self._store.get(resource, namespace, name)

    def list(self, resource: str, namespace: str | None = None) -> tuple[list[dict], int]:
        return self._store.list(resource, namespace)

    def count(self, resource: str, namespace: str | None = None) -> int:
        return self._store.count(resource, namespace)

    def allocations(self, pool: str) -> dict[str, str]:
        return self._store.allocations(pool)

    def watch(self, resource: str | None, namespace: str | None = None, since: str | int | None = None):
        return self._store.watch(resource, namespace, since)

    # -- writes are checked, not made

    def create(self, resource: str, obj: dict) -> dict:
        namespace, name = namespace_and_name(obj)
        if self._store.get(resource, namespace, name) is not None:
            raise already_exists(resource, name)
        created = copy.deepcopy(obj)
        created["metadata"].pop("resourceVersion", None)
        return created

    def _current(self, resource: str, namespace: str | None, name: str, expected_rv: str | int | None) -> dict:
        current = self._store.get(resource, namespace or "", name)
        if current is None:
            raise not_found(resource, name)
        if expected_rv is not None and str(expected_rv) != current["metadata"]["resourceVersion"]:
            raise conflict(resource, name)
        return current

    def update(self, resource: str, obj: dict, expected_rv: str | int | None = None) -> dict:
        namespace, name = namespace_and_name(obj)
        current = self._current(resource, namespace, name, expected_rv)
        updated = copy.deepcopy(obj)
        updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return updated

    def delete(self, resource: str, namespace: str | None, name: str,
               expected_rv: str | int | None = None) -> dict:
        return self._current(resource, namespace, name, expected_rv)

    def allocate(self, pool: str, candidates: Iterable, owner: str) -> str:
        taken = set(self._store.allocations(pool)) | self._held.setdefault(pool, set())
        for candidate in candidates:
            value = str(candidate)
            if value not in taken:
                self._held[pool].add(value)
                return value
        raise PoolExhausted(f"pool {pool} has no free value")

    def release(self, pool: str, owner: str) -> str | None:
        return None
