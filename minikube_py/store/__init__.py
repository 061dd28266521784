"""The object store: API objects, the global revision, watches, compaction, leases.

One contract (interface.py), two backends: `Store`, sqlite in `<home>/state.db` (the default),
and `EtcdStore`, etcd v3 (`start --store etcd://...`; import it from
`minikube_py.store.etcd`, which loads the etcd client only when a cluster uses it). The API server's Registry is the only
writer of objects.
"""

from minikube_py.store.backends import StoreSpec, open_store, parse_store_spec
from minikube_py.store.etcd_endpoints import EtcdTLS
from minikube_py.store.interface import ObjectStore, PoolExhausted, conflict, not_found, resource_label, status_details
from minikube_py.store.store import Store
from minikube_py.store.watch import ADDED, DELETED, MODIFIED, WatchEvent, Watcher

__all__ = ["ADDED", "DELETED", "EtcdTLS", "MODIFIED", "ObjectStore", "PoolExhausted", "Store", "StoreSpec",
           "WatchEvent", "Watcher", "conflict", "not_found", "open_store", "parse_store_spec", "resource_label",
           "status_details"]
