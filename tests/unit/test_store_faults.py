"""Storage faults: a full database is a 507 that says so, nothing is half-written, and writes
work again once there is room, on both backends. sqlite's max_page_count stands in for a full
disk; etcd runs with a small --quota-backend-bytes and raises its NOSPACE alarm."""

from __future__ import annotations

import pytest

from minikube_py.api import errors
from minikube_py.apiserver.registry import Registry
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from minikube_py.store.etcd_client import EtcdMembers
from tests.etcd_cluster import ETCD, ETCD_MISSING, EtcdCluster


def pod(name: str, size: int = 0) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": {"padding": "x" * size}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


class SqliteRoom:
    """A sqlite store that fills after a few pages."""

    full_words = "database or disk is full"

    def __init__(self, tmp_path):
        self.path = tmp_path / "state.db"
        self.store = Store(self.path)
        pages = self.store.db.execute("PRAGMA page_count").fetchone()[0]
        self.store.db.execute(f"PRAGMA max_page_count = {pages + 4}")

    def make_room(self) -> None:
        self.store.db.execute("PRAGMA max_page_count = 1000000")

    def stored_pod_names(self) -> set[str]:
        return {row[0] for row in self.store.db.execute("SELECT name FROM objects WHERE resource = 'pods'")}

    def close(self) -> None:
        self.store.close()


class EtcdRoom:
    """An etcd store whose one member allows 1 MiB: past it etcd raises its NOSPACE alarm and
    takes only reads and deletes until an operator frees space and disarms the alarm."""

    full_words = "database space exceeded"

    def __init__(self):
        from minikube_py.store.etcd import EtcdStore

        self.etcd = EtcdCluster(1, name="quota", quota_bytes=1024 * 1024)
        self.store = EtcdStore(self.etcd.endpoints, "full")

    def make_room(self) -> None:
        """What an etcd operator does: delete, compact, defragment, disarm."""
        for item in self.store.list("pods")[0]:
            if item["metadata"]["name"].startswith("filler-"):
                self.store.delete("pods", "default", item["metadata"]["name"])
        members = EtcdMembers(self.etcd.endpoints)
        members.call("/kv/compaction", {"revision": self.store.revision})
        members.call("/maintenance/defragment", {})
        members.call("/maintenance/alarm", {"action": "DEACTIVATE", "alarm": "NOSPACE", "memberID": members.call(
            "/maintenance/status", {})["header"]["member_id"]})

    def stored_pod_names(self) -> set[str]:
        from minikube_py.store.etcd import EtcdStore

        with EtcdStore(self.etcd.endpoints, "full") as reopened:
            return {item["metadata"]["name"] for item in reopened.list("pods")[0]}

    def close(self) -> None:
        self.store.close()
        self.etcd.stop()


@pytest.fixture(params=["sqlite", "etcd"])
def room(request, tmp_path):
    if request.param == "etcd" and ETCD is None:
        pytest.skip(ETCD_MISSING)
    backend = SqliteRoom(tmp_path) if request.param == "sqlite" else EtcdRoom()
    yield backend
    backend.close()


@pytest.fixture
def full_store(room):
    return room.store


def fill(registry: Registry) -> errors.ApiError:
    for index in range(200):
        try:
            registry.create("pods", "default", pod(f"filler-{index}", 20_000))
        except errors.ApiError as error:
            return error
    raise AssertionError("the database never filled up")


def test_a_full_database_is_a_507_that_says_so_and_changes_nothing(full_store, room):
    registry = Registry(full_store, FakeClock())
    error = fill(registry)
    assert error.code == 507 and error.reason == "InsufficientStorage"
    assert room.full_words in error.message and "no transaction" not in error.message
    revision, names = full_store.revision, {p["metadata"]["name"] for p in registry.list("pods")["items"]}
    # Every later write fails the same way, and neither memory nor disk holds half of any of them.
    with pytest.raises(errors.InsufficientStorage):
        registry.create("pods", "default", pod("one-more", 20_000))
    assert full_store.revision == revision
    assert {p["metadata"]["name"] for p in registry.list("pods")["items"]} == names
    assert room.stored_pod_names() == names
    if isinstance(full_store, Store):
        assert full_store.db.execute("SELECT max(revision) FROM log").fetchone()[0] == revision


def test_writes_work_again_once_there_is_room(full_store, room):
    registry = Registry(full_store, FakeClock())
    fill(registry)
    room.make_room()
    created = registry.create("pods", "default", pod("after", 20_000))
    assert int(created["metadata"]["resourceVersion"]) == full_store.revision
    assert registry.get("pods", "default", "after")["metadata"]["name"] == "after"


def test_a_lease_on_a_full_database_is_a_507(full_store):
    registry = Registry(full_store, FakeClock())
    fill(registry)
    with pytest.raises(errors.InsufficientStorage):
        full_store.allocate("pool", [f"10.0.{i // 250}.{i % 250}" for i in range(20_000)], "x" * 100_000)
