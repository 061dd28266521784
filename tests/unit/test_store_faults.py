"""Storage faults: a full database is a 507 that says so, nothing is half-written, and writes
work again once there is room. sqlite's max_page_count stands in for a full disk."""

from __future__ import annotations

import pytest

from minikube_py.api import errors
from minikube_py.apiserver.registry import Registry
from minikube_py.clock import FakeClock
from minikube_py.store import Store


def pod(name: str, size: int = 0) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": {"padding": "x" * size}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


@pytest.fixture
def full_store(tmp_path):
    store = Store(tmp_path / "state.db")
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 4}")
    yield store
    store.close()


def fill(registry: Registry) -> errors.ApiError:
    for index in range(200):
        try:
            registry.create("pods", "default", pod(f"filler-{index}", 20_000))
        except errors.ApiError as error:
            return error
    raise AssertionError("the database never filled up")


def test_a_full_database_is_a_507_that_says_so_and_changes_nothing(full_store):
    registry = Registry(full_store, FakeClock())
    error = fill(registry)
    assert error.code == 507 and error.reason == "InsufficientStorage"
    assert "database or disk is full" in error.message and "no transaction" not in error.message
    revision, names = full_store.revision, {p["metadata"]["name"] for p in registry.list("pods")["items"]}
    # Every later write fails the same way, and neither memory nor disk holds half of any of them.
    with pytest.raises(errors.InsufficientStorage):
        registry.create("pods", "default", pod("one-more", 20_000))
    assert full_store.revision == revision
    assert {p["metadata"]["name"] for p in registry.list("pods")["items"]} == names
    on_disk = {row[0] for row in full_store.db.execute("SELECT name FROM objects WHERE resource = 'pods'")}
    assert on_disk == names
    assert full_store.db.execute("SELECT max(revision) FROM log").fetchone()[0] == revision


def test_writes_work_again_once_there_is_room(full_store):
    registry = Registry(full_store, FakeClock())
    fill(registry)
    full_store.db.execute("PRAGMA max_page_count = 1000000")
    created = registry.create("pods", "default", pod("after", 20_000))
    assert int(created["metadata"]["resourceVersion"]) == full_store.revision
    assert registry.get("pods", "default", "after")["metadata"]["name"] == "after"


def test_a_lease_on_a_full_database_is_a_507(full_store):
    registry = Registry(full_store, FakeClock())
    fill(registry)
    with pytest.raises(errors.InsufficientStorage):
        full_store.allocate("pool", [f"10.0.{i // 250}.{i % 250}" for i in range(20_000)], "x" * 100_000)
