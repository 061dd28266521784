"""Choosing a store backend from `start --store`: `sqlite` (the default, `<home>/state.db`) or
`etcd://HOST:PORT[,HOST:PORT...]` (etcd v3 members; the cluster's objects go under its name).

A member may be written `https://HOST:PORT` (`etcd://https://10.0.0.1:2379,https://10.0.0.2:2379`):
the store then speaks TLS to it with `start --etcd-cafile`, `--etcd-certfile` and
`--etcd-keyfile`, kube-apiserver's flags. `HOST:PORT` and `http://HOST:PORT` are plain HTTP, as
before. Every member of a store uses the same scheme."""

from __future__ import annotations

import os
from dataclasses import dataclass

from minikube_py.store.etcd_endpoints import HTTP, HTTPS, EtcdTLS
from minikube_py.store.interface import ObjectStore

SQLITE = "sqlite"
ETCD_SCHEME = "etcd://"
STORE_HELP = f"{SQLITE} or {ETCD_SCHEME}[https://]HOST:PORT[,[https://]HOST:PORT...]"


@dataclass(frozen=True)
class StoreSpec:
    """A parsed --store: the backend and, for etcd, its members' client endpoints (host:port)."""

    backend: str
    endpoints: tuple[str, ...] = ()  # `host:port` (plain HTTP) or `https://host:port`
    tls: EtcdTLS = EtcdTLS()

    def __str__(self) -> str:
        return SQLITE if self.backend == SQLITE else ETCD_SCHEME + ",".join(self.endpoints)

    @property
    def secure(self) -> bool:
        return any(endpoint.startswith(HTTPS) for endpoint in self.endpoints)


def parse_store_spec(text: str, tls: EtcdTLS | None = None) -> StoreSpec:
    """`sqlite` or `etcd://127.0.0.1:2379,127.0.0.1:22379` (`etcd://https://...` with `tls`);
    raises ValueError saying what is wrong, naming the flag."""
    text, tls = text.strip(), tls or EtcdTLS()
    if text == SQLITE:
        if tls.given:
            raise ValueError("--etcd-cafile, --etcd-certfile, --etcd-keyfile: the store is sqlite; they are for "
                             "--store etcd://https://HOST:PORT,...")
        return StoreSpec(SQLITE)
    if not text.startswith(ETCD_SCHEME):
        raise ValueError(f"--store: {text!r} is not a store; use {STORE_HELP}")
    endpoints = []
    for written in text[len(ETCD_SCHEME):].split(","):
        endpoint = written.strip()
        scheme = HTTPS if endpoint.startswith(HTTPS) else ""
        address = endpoint.removeprefix(HTTPS).removeprefix(HTTP)
        host, separator, port = address.rpartition(":")
        if not separator or not host or "/" in address or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"--store: {endpoint!r} in {text!r} is not HOST:PORT or https://HOST:PORT (such as "
                             f"127.0.0.1:2379); use {STORE_HELP}")
        endpoints.append(f"{scheme}{host}:{int(port)}")
    spec = StoreSpec("etcd", tuple(endpoints), tls)
    if spec.secure and not all(endpoint.startswith(HTTPS) for endpoint in endpoints):
        raise ValueError(f"--store: {text!r} mixes https:// and plain members; every member of one etcd speaks "
                         "the same: write each as https://HOST:PORT")
    if tls.given and not spec.secure:
        raise ValueError(f"--etcd-cafile, --etcd-certfile, --etcd-keyfile: the members in --store {text!r} are plain "
                         "HTTP; write them as etcd://https://HOST:PORT,... to use TLS")
    if bool(tls.cert_file) != bool(tls.key_file):
        raise ValueError("--etcd-certfile and --etcd-keyfile: give both (the client certificate and its key) or "
                         "neither")
    for flag, path in (("--etcd-cafile", tls.ca_file), ("--etcd-certfile", tls.cert_file),
                       ("--etcd-keyfile", tls.key_file)):
        if path is not None and not os.access(path, os.R_OK):
            raise ValueError(f"{flag}: {path} cannot be read (is it there, readable by this user?)")
    return spec


def probe(spec: StoreSpec) -> None:
    """Raise the store's own error (ServiceUnavailable naming the endpoints) if it cannot be
    used; the sqlite file always can."""
    if spec.backend == SQLITE:
        return
    from minikube_py.store.etcd_client import EtcdMembers, encode

    EtcdMembers(list(spec.endpoints), timeout=5.0, tls=spec.tls).call("/kv/range", {"key": encode("/"), "limit": 1})


def open_store(spec: StoreSpec, home: str, cluster: str) -> ObjectStore:
    """The store `spec` names: the home's sqlite file, or the cluster's keys in etcd."""
    if spec.backend == SQLITE:
        from minikube_py.store.store import Store

        return Store(os.path.join(home, "state.db"))
    from minikube_py.store.etcd import EtcdStore

    return EtcdStore(list(spec.endpoints), cluster, tls=spec.tls)
