"""The store conformance harness: every store test runs on each backend.

`store_backend` is parametrized over sqlite, a one-member etcd and a three-member etcd; its
`open()` opens a store on the test's own backing (a sqlite file in the test's tmp_path, or a
cluster prefix of its own on the session's etcd), so opening it again is "reopening" the same
data. `store_backend.opener` is the Python expression a subprocess uses to open it (the kill -9
tests). The etcd members run for the whole session (each cluster started once, by the first test
that asks for it) and are stopped, their data removed, at its end; without the etcd binary the
etcd cases skip, saying so.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from minikube_py.store import Store
from tests.etcd_cluster import ETCD, ETCD_MISSING, EtcdCluster

_prefixes = itertools.count()


def _members(size: int, name: str):
    if ETCD is None:
        pytest.skip(ETCD_MISSING)
    with EtcdCluster(size, name=name) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def etcd_single():
    yield from _members(1, "unit")


@pytest.fixture(scope="session")
def etcd_trio():
    yield from _members(3, "trio")


@dataclass
class Backend:
    name: str
    opener: str  # a Python expression opening the store, after `from minikube_py.store... import`

    def open(self):
        from minikube_py.store.etcd import EtcdStore

        return eval(self.opener, {"Store": Store, "EtcdStore": EtcdStore})

    @property
    def imports(self) -> str:
        return ("from minikube_py.store import Store" if self.name == "sqlite"
                else "from minikube_py.store.etcd import EtcdStore")


def etcd_backend(cluster: EtcdCluster) -> Backend:
    return Backend("etcd", f"EtcdStore({cluster.endpoints!r}, 'test{next(_prefixes)}')")


@pytest.fixture(params=["sqlite", "etcd", "etcd-3"])
def store_backend(request, tmp_path):
    """sqlite, a one-member etcd, and a three-member etcd (issue 14: the suite on 1 and 3 members)."""
    if request.param == "sqlite":
        return Backend("sqlite", f"Store({str(tmp_path / 'state.db')!r})")
    return etcd_backend(request.getfixturevalue("etcd_single" if request.param == "etcd" else "etcd_trio"))
