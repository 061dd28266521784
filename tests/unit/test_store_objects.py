"""Store objects: revisions, compare-and-swap, persistence across reopen and kill -9, on every
backend (tests/unit/store_backends.py). Revisions are counted from where the store started: an
etcd shared by the session's tests has other tests' revisions below."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from minikube_py.api import errors
from minikube_py.store import Store


@pytest.fixture
def store(store_backend):
    with store_backend.open() as store:
        yield store


def pod(name, namespace="default", **fields):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace}, **fields}


def test_every_write_bumps_the_global_revision_and_sets_resource_version(store):
    base = store.revision
    first = store.create("pods", pod("a"))
    second = store.create("deployments", {"metadata": {"name": "d", "namespace": "default"}})
    updated = store.update("pods", {**first, "spec": {"x": 1}})
    assert [first["metadata"]["resourceVersion"], second["metadata"]["resourceVersion"],
            updated["metadata"]["resourceVersion"]] == [str(base + 1), str(base + 2), str(base + 3)]
    assert store.get("pods", "default", "a")["spec"] == {"x": 1}
    assert store.get("pods", "default", "a")["metadata"]["resourceVersion"] == str(base + 3)
    assert store.revision == base + 3


def test_create_does_not_change_the_callers_dict(store):
    body = pod("a")
    store.create("pods", body)
    assert "resourceVersion" not in body["metadata"]


def test_create_of_an_existing_name_is_already_exists(store):
    store.create("pods", pod("a"))
    with pytest.raises(errors.AlreadyExists, match='pods "a" already exists'):
        store.create("pods", pod("a"))
    store.create("pods", pod("a", namespace="other"))


def test_update_with_a_stale_resource_version_is_a_conflict_with_kubernetes_message(store):
    created = store.create("pods", pod("x"))
    store.update("pods", created, expected_rv=created["metadata"]["resourceVersion"])
    with pytest.raises(errors.Conflict) as raised:
        store.update("pods", created, expected_rv=created["metadata"]["resourceVersion"])
    assert raised.value.message == (
        'Operation cannot be fulfilled on pods "x": the object has been modified; '
        "please apply your changes to the latest version and try again")


def test_update_and_delete_of_a_missing_object_are_not_found(store):
    with pytest.raises(errors.NotFound, match='pods "ghost" not found'):
        store.update("pods", pod("ghost"))
    with pytest.raises(errors.NotFound):
        store.delete("pods", "default", "ghost")


def test_delete_returns_the_last_state_at_the_deletions_revision(store):
    base = store.revision
    store.create("pods", pod("a", spec={"y": 2}))
    deleted = store.delete("pods", "default", "a")
    assert deleted["spec"] == {"y": 2}
    assert deleted["metadata"]["resourceVersion"] == str(base + 2)
    assert store.get("pods", "default", "a") is None


def test_list_filters_by_namespace_orders_by_name_and_reports_the_revision(store):
    base = store.revision
    for namespace, name in [("b", "z"), ("a", "y"), ("b", "c")]:
        store.create("pods", pod(name, namespace))
    items, revision = store.list("pods")
    assert [(item["metadata"]["namespace"], item["metadata"]["name"]) for item in items] == [
        ("a", "y"), ("b", "c"), ("b", "z")]
    assert revision == base + 3
    assert [item["metadata"]["name"] for item in store.list("pods", "b")[0]] == ["c", "z"]
    assert store.list("deployments") == ([], base + 3)


def test_cluster_scoped_objects_have_no_namespace_in_their_key(store):
    store.create("namespaces", {"metadata": {"name": "team"}})
    store.create("pods", pod("team"))
    assert store.get("namespaces", None, "team")["metadata"]["name"] == "team"
    assert [item["metadata"]["name"] for item in store.list("namespaces")[0]] == ["team"]
    assert store.count("namespaces") == 1 and store.count("pods", "default") == 1


def test_concurrent_compare_and_swap_writers_lose_no_update(store):
    base = store.revision
    store.create("configs", {"metadata": {"name": "counter"}, "value": 0})
    # Every lost race costs etcd a network round trip: fewer rounds there, the same contention.
    threads, increments_per_thread = 8, 50 if isinstance(store, Store) else 12
    conflicts = []

    def increment():
        for _ in range(increments_per_thread):
            while True:
                current = store.get("configs", "", "counter")
                current["value"] += 1
                try:
                    store.update("configs", current,
                                 expected_rv=current["metadata"]["resourceVersion"])
                    break
                except errors.Conflict:
                    conflicts.append(1)

    workers = [threading.Thread(target=increment) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.get("configs", "", "counter")["value"] == threads * increments_per_thread
    assert store.revision == base + 1 + threads * increments_per_thread


def test_objects_and_revision_survive_reopening(store_backend):
    with store_backend.open() as store:
        store.create("pods", pod("a"))
        store.create("pods", pod("b"))
        store.delete("pods", "default", "a")
        revision = store.revision
    with store_backend.open() as reopened:
        assert [item["metadata"]["name"] for item in reopened.list("pods")[0]] == ["b"]
        assert reopened.revision == revision
        assert reopened.create("pods", pod("c"))["metadata"]["resourceVersion"] == str(revision + 1)


def test_committed_writes_survive_kill_9(store_backend):
    script = (
        "import os, signal, sys\n"
        f"{store_backend.imports}\n"
        f"store = {store_backend.opener}\n"
        "print(store.revision, flush=True)\n"
        "for i in range(200):\n"
        "    store.create('pods', {'metadata': {'name': f'p{i}', 'namespace': 'default'}})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == -signal.SIGKILL
    base = int(result.stdout.split()[0])
    with store_backend.open() as reopened:
        assert len(reopened.list("pods")[0]) == 200
        assert reopened.revision == base + 200


def test_a_kill_9_in_the_middle_of_steady_writes_leaves_a_consistent_store(store_backend):
    script = (
        "import sys\n"
        f"{store_backend.imports}\n"
        f"store = {store_backend.opener}\n"
        "i = 0\n"
        "while True:\n"
        "    store.create('pods', {'metadata': {'name': f'p{i}', 'namespace': 'default'}, 'n': 0})\n"
        "    store.update('pods', {'metadata': {'name': f'p{i}', 'namespace': 'default'}, 'n': 1})\n"
        "    if i % 3 == 0:\n"
        "        store.delete('pods', 'default', f'p{i}')\n"
        "    store.allocate('ips', range(10**6), f'p{i}')\n"
        "    if i % 50 == 0:\n"
        "        store.compact(keep=20)\n"
        "    if i == 100:\n"
        "        print('steady', flush=True)\n"
        "    i += 1\n")
    writer = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd(), stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert writer.stdout.readline() == b"steady\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()

    with store_backend.open() as reopened:
        pods, revision = reopened.list("pods")
        assert revision == reopened.revision > 200
        if isinstance(reopened, Store):
            log_revisions = [row[0] for row in reopened.db.execute("SELECT revision FROM log ORDER BY revision")]
            assert log_revisions == list(range(reopened.compacted_revision + 1, revision + 1)), \
                "the log holds every revision after the compacted one, up to the current one"
            for row_revision, data in reopened.db.execute("SELECT revision, data FROM objects"):
                assert json.loads(data)["metadata"]["resourceVersion"] == str(row_revision)
                assert row_revision <= revision
            with reopened.watch("pods", since=reopened.compacted_revision) as watcher:
                assert watcher.next(timeout=0).revision == reopened.compacted_revision + 1
        for item in pods:  # each object was written whole, at a revision the store has reached
            assert int(item["metadata"]["resourceVersion"]) <= revision and item["n"] in (0, 1)
        leases = reopened.allocations("ips")
        assert len(set(leases.values())) == len(leases) > 100
        assert reopened.create("pods", pod("after"))["metadata"]["resourceVersion"] == str(revision + 1)
