"""Choosing a store backend from `start --store`: `sqlite` (the default, `<home>/state.db`) or
`etcd://HOST:PORT[,HOST:PORT...]` (etcd v3 members; the cluster's objects go under its name)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from minikube_py.store.interface import ObjectStore

SQLITE = "sqlite"
ETCD_SCHEME = "etcd://"
STORE_HELP = f"{SQLITE} or {ETCD_SCHEME}HOST:PORT[,HOST:PORT...]"


@dataclass(frozen=True)
class StoreSpec:
    """A parsed --store: the backend and, for etcd, its members' client endpoints (host:port)."""

    backend: str
    endpoints: tuple[str, ...] = ()

    def __str__(self) -> str:
        return SQLITE if self.backend == SQLITE else ETCD_SCHEME + ",".join(self.endpoints)


def parse_store_spec(text: str) -> StoreSpec:
    """`sqlite` or `etcd://127.0.0.1:2379,127.0.0.1:22379`; raises ValueError saying what is wrong."""
    text = text.strip()
    if text == SQLITE:
        return StoreSpec(SQLITE)
    if not text.startswith(ETCD_SCHEME):
        raise ValueError(f"--store: {text!r} is not a store; use {STORE_HELP}")
    endpoints = []
    for endpoint in text[len(ETCD_SCHEME):].split(","):
        host, separator, port = endpoint.strip().rpartition(":")
        if not separator or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"--store: {endpoint.strip()!r} in {text!r} is not HOST:PORT (such as 127.0.0.1:2379); "
                             f"use {STORE_HELP}")
        endpoints.append(f"{host}:{int(port)}")
    return StoreSpec("etcd", tuple(endpoints))


def probe(spec: StoreSpec) -> None:
    """Raise the store's own error (ServiceUnavailable naming the endpoints) if it cannot be
    used; the sqlite file always can."""
    if spec.backend == SQLITE:
        return
    from minikube_py.store.etcd_client import EtcdMembers, encode

    EtcdMembers(list(spec.endpoints), timeout=5.0).call("/kv/range", {"key": encode("/"), "limit": 1})


def open_store(spec: StoreSpec, home: str, cluster: str) -> ObjectStore:
    """The store `spec` names: the home's sqlite file, or the cluster's keys in etcd."""
    if spec.backend == SQLITE:
        from minikube_py.store.store import Store

        return Store(os.path.join(home, "state.db"))
    from minikube_py.store.etcd import EtcdStore

    return EtcdStore(list(spec.endpoints), cluster)
