"""The object store: sqlite-backed objects, the global revision, watches, compaction, leases.

`Store` is the only thing that touches `state.db`; the API server's Registry is its only writer.
"""

from minikube_py.store.store import PoolExhausted, Store, conflict, not_found, resource_label
from minikube_py.store.watch import ADDED, DELETED, MODIFIED, WatchEvent, Watcher

__all__ = ["ADDED", "DELETED", "MODIFIED", "PoolExhausted", "Store", "WatchEvent", "Watcher",
           "conflict", "not_found", "resource_label"]
