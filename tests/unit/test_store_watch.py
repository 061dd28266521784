"""Store watches: strict revision order, filtering, replay from a revision, 410 after compaction,
on every backend (tests/unit/store_backends.py; revisions counted from where the store started)."""

import threading
import time

import pytest

from minikube_py.api import errors
from tests.etcd_cluster import wait_until


@pytest.fixture
def store(store_backend):
    with store_backend.open() as store:
        yield store


def obj(name, namespace="default"):
    return {"metadata": {"name": name, "namespace": namespace}}


def drain(watcher):
    events = []
    while (event := watcher.next(timeout=0)) is not None:
        events.append(event)
    return events


def drain_until(watcher, count, timeout=10.0):
    """The next `count` events (a backend may deliver them from another thread)."""
    events = []
    deadline = time.monotonic() + timeout
    while len(events) < count and (event := watcher.next(timeout=max(0.0, deadline - time.monotonic()))):
        events.append(event)
    return events


def test_a_watch_on_every_resource_sees_changes_in_revision_order(store):
    base = store.revision
    watcher = store.watch(None)
    store.create("pods", obj("a"))
    store.create("deployments", obj("d"))
    store.update("pods", obj("a"))
    store.delete("deployments", "default", "d")
    events = drain_until(watcher, 4)
    assert [(event.type, event.resource, event.revision - base) for event in events] == [
        ("ADDED", "pods", 1), ("ADDED", "deployments", 2), ("MODIFIED", "pods", 3),
        ("DELETED", "deployments", 4)]
    assert events[2].previous["metadata"]["resourceVersion"] == str(base + 1)
    assert events[3].object["metadata"]["resourceVersion"] == str(base + 4)
    assert drain(watcher) == []


def test_a_watch_sees_only_its_resource_and_namespace(store):
    watcher = store.watch("pods", "default")
    store.create("pods", obj("other-ns", "kube-system"))
    store.create("replicasets", obj("rs"))
    store.create("pods", obj("mine"))
    assert [event.object["metadata"]["name"] for event in drain_until(watcher, 1)] == ["mine"]
    assert drain(watcher) == []


def test_a_watch_from_a_revision_replays_the_log_then_streams(store):
    base = store.revision
    for name in "abc":
        store.create("pods", obj(name))
    watcher = store.watch("pods", since=base + 1)
    store.create("pods", obj("d"))
    assert [event.revision - base for event in drain_until(watcher, 3)] == [2, 3, 4]
    assert drain(watcher) == []


def test_a_watch_from_a_revision_the_store_has_not_reached_yet_starts_after_it(store):
    """A resourceVersion from another API server on the same store can be ahead of this one."""
    base = store.revision
    watcher = store.watch("pods", since=base + 2)
    for name in "abc":
        store.create("pods", obj(name))
    assert [event.revision - base for event in drain_until(watcher, 1)] == [3]


def test_a_blocked_reader_is_woken_by_a_commit_in_another_thread(store):
    watcher = store.watch("pods")
    writer = threading.Timer(0.05, lambda: store.create("pods", obj("late")))
    writer.start()
    started = time.monotonic()
    event = watcher.next(timeout=10)
    writer.join()
    assert event is not None and event.object["metadata"]["name"] == "late"
    assert time.monotonic() - started < 5


def test_next_returns_none_on_timeout_and_iteration_stops_when_closed(store):
    watcher = store.watch("pods")
    assert watcher.next(timeout=0.01) is None
    threading.Timer(0.02, watcher.close).start()
    assert list(watcher) == []
    store.create("pods", obj("after-close"))
    assert watcher.next(timeout=0) is None


def test_a_watch_below_the_compacted_revision_is_gone_with_kubernetes_message(store):
    base = store.revision
    for index in range(10):
        store.create("pods", obj(f"p{index}"))
    assert store.compact(keep=3) == base + 7
    with pytest.raises(errors.Gone) as raised:
        store.watch("pods", since=base + 5)
    assert raised.value.code == 410
    assert raised.value.message == f"too old resource version: {base + 5} ({base + 7})"
    assert [event.revision - base for event in drain_until(store.watch("pods", since=base + 7), 3)] == [8, 9, 10]


def test_compaction_survives_reopen(store_backend):
    with store_backend.open() as store:
        base = store.revision
        for index in range(5):
            store.create("pods", obj(f"p{index}"))
        store.compact(keep=1)
    with store_backend.open() as reopened:
        # sqlite keeps its log across a restart; etcd's mirror starts its window where it starts
        # (kube-apiserver's watch cache does the same): either way nothing older comes back.
        assert reopened.compacted_revision >= base + 4
        with pytest.raises(errors.Gone):
            reopened.watch("pods", since=base + 2)


def test_the_background_compactor_trims_the_log_until_closed(store):
    base = store.revision
    for index in range(20):
        store.create("pods", obj(f"p{index}"))
    store.start_compactor(interval=0.01, keep=5)
    assert wait_until(lambda: store.compacted_revision == base + 15, timeout=5)
    store.close()
    assert "store-compactor" not in [thread.name for thread in threading.enumerate()]


def test_a_watcher_that_falls_too_far_behind_is_closed_with_gone(store, monkeypatch):
    monkeypatch.setattr("minikube_py.store.watch.MAX_PENDING_EVENTS", 3)
    watcher = store.watch("pods")
    for index in range(4):
        store.create("pods", obj(f"p{index}"))
    assert wait_until(lambda: watcher.closed, timeout=5)
    with pytest.raises(errors.Gone, match="fell 3 events behind"):
        watcher.next(timeout=0)
