"""Store watches: strict revision order, filtering, replay from a revision, 410 after compaction."""

import threading
import time

import pytest

from minikube_py.api import errors
from minikube_py.store import Store


def obj(name, namespace="default"):
    return {"metadata": {"name": name, "namespace": namespace}}


@pytest.fixture
def store():
    with Store(":memory:") as store:
        yield store


def drain(watcher):
    events = []
    while (event := watcher.next(timeout=0)) is not None:
        events.append(event)
    return events


def test_a_watch_on_every_resource_sees_changes_in_revision_order(store):
    watcher = store.watch(None)
    store.create("pods", obj("a"))
    store.create("deployments", obj("d"))
    store.update("pods", obj("a"))
    store.delete("deployments", "default", "d")
    events = drain(watcher)
    assert [(event.type, event.resource, event.revision) for event in events] == [
        ("ADDED", "pods", 1), ("ADDED", "deployments", 2), ("MODIFIED", "pods", 3),
        ("DELETED", "deployments", 4)]
    assert events[2].previous["metadata"]["resourceVersion"] == "1"


def test_a_watch_sees_only_its_resource_and_namespace(store):
    watcher = store.watch("pods", "default")
    store.create("pods", obj("other-ns", "kube-system"))
    store.create("replicasets", obj("rs"))
    store.create("pods", obj("mine"))
    assert [event.object["metadata"]["name"] for event in drain(watcher)] == ["mine"]


def test_a_watch_from_a_revision_replays_the_log_then_streams(store):
    for name in "abc":
        store.create("pods", obj(name))
    watcher = store.watch("pods", since=1)
    store.create("pods", obj("d"))
    assert [event.revision for event in drain(watcher)] == [2, 3, 4]


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
    for index in range(10):
        store.create("pods", obj(f"p{index}"))
    assert store.compact(keep=3) == 7
    with pytest.raises(errors.Gone) as raised:
        store.watch("pods", since=5)
    assert raised.value.code == 410
    assert raised.value.message == "too old resource version: 5 (7)"
    assert [event.revision for event in drain(store.watch("pods", since=7))] == [8, 9, 10]


def test_compaction_survives_reopen(tmp_path):
    with Store(tmp_path / "state.db") as store:
        for index in range(5):
            store.create("pods", obj(f"p{index}"))
        store.compact(keep=1)
    with Store(tmp_path / "state.db") as reopened:
        assert reopened.compacted_revision == 4
        with pytest.raises(errors.Gone):
            reopened.watch("pods", since=2)


def test_the_background_compactor_trims_the_log_until_closed(store):
    for index in range(20):
        store.create("pods", obj(f"p{index}"))
    store.start_compactor(interval=0.01, keep=5)
    deadline = time.monotonic() + 5
    while store.compacted_revision != 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.compacted_revision == 15
    store.close()
    assert "store-compactor" not in [thread.name for thread in threading.enumerate()]


def test_a_watcher_that_falls_too_far_behind_is_closed_with_gone(store, monkeypatch):
    monkeypatch.setattr("minikube_py.store.watch.MAX_PENDING_EVENTS", 3)
    watcher = store.watch("pods")
    for index in range(4):
        store.create("pods", obj(f"p{index}"))
    with pytest.raises(errors.Gone, match="fell 3 events behind"):
        watcher.next(timeout=0)
    assert watcher.closed
