"""Informer: list then watch into a local cache, handlers, re-list after Gone or a broken watch."""

from __future__ import annotations

import threading
import time

import pytest

from minikube_py.api.selectors import parse_selector
from minikube_py.client.informer import Informer, SharedInformers, cache_key, split_cache_key
from tests.unit.fakes import FakeCluster


@pytest.fixture
def cluster():
    cluster = FakeCluster()
    yield cluster
    cluster.close()


class Recorder:
    """Handlers that remember what they were told, and let a test wait for it."""

    def __init__(self):
        self.seen: list[tuple] = []
        self._changed = threading.Condition()

    def on_add(self, obj):
        self._record(("add", obj.metadata.name))

    def on_update(self, old, new):
        self._record(("update", new.metadata.name, old.metadata.resource_version, new.metadata.resource_version))

    def on_delete(self, obj):
        self._record(("delete", obj.metadata.name))

    def _record(self, entry):
        with self._changed:
            self.seen.append(entry)
            self._changed.notify_all()

    def kinds(self):
        return [(entry[0], entry[1]) for entry in self.seen]

    def wait_for(self, entry, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self._changed:
            while entry not in self.kinds():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{entry} not seen within {timeout}s; saw {self.kinds()}")
                self._changed.wait(remaining)


def watched(informer):
    recorder = Recorder()
    informer.add_event_handler(recorder.on_add, recorder.on_update, recorder.on_delete)
    return recorder


def test_keys_are_namespace_slash_name_or_just_the_name(cluster):
    pod = cluster.pod("web")
    node = cluster.add_node("node-1")

    assert cache_key(pod) == "default/web"
    assert cache_key(node) == "node-1"
    assert split_cache_key("default/web") == ("default", "web")
    assert split_cache_key("node-1") == (None, "node-1")


def test_refresh_lists_into_the_cache_and_reports_each_object_once(cluster):
    cluster.pod("a")
    cluster.pod("b")
    informer = Informer(cluster.client, "pods")
    recorder = watched(informer)

    informer.refresh()
    informer.refresh()

    assert informer.has_synced()
    assert sorted(informer.keys()) == ["default/a", "default/b"]
    assert sorted(recorder.kinds()) == [("add", "a"), ("add", "b")]


def test_refresh_reports_changes_and_deletions_since_the_last_list(cluster):
    cluster.pod("a")
    cluster.pod("b")
    informer = Informer(cluster.client, "pods")
    informer.refresh()
    recorder = watched(informer)
    recorder.seen.clear()

    cluster.set_pod_status("a", ready=True)
    cluster.registry.delete("pods", "default", "b")
    cluster.pod("c")
    informer.refresh()

    assert sorted(recorder.kinds()) == [("add", "c"), ("delete", "b"), ("update", "a")]
    assert informer.get("default/a").status.phase == "Running"
    assert informer.get("default/b") is None


def test_a_handler_registered_late_is_told_about_cached_objects(cluster):
    cluster.pod("a")
    informer = Informer(cluster.client, "pods")
    informer.refresh()

    recorder = watched(informer)

    assert recorder.kinds() == [("add", "a")]


def test_list_filters_by_namespace_and_label_selector(cluster):
    cluster.create("namespaces", {"metadata": {"name": "other"}}, namespace=None)
    cluster.pod("web", labels={"app": "web"})
    cluster.pod("db", labels={"app": "db"})
    cluster.registry.create("pods", "other", {"metadata": {"name": "web", "labels": {"app": "web"}},
                                              "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    informer = Informer(cluster.client, "pods")
    informer.refresh()

    assert len(informer.list()) == 3
    assert sorted(p.metadata.name for p in informer.list(namespace="default")) == ["db", "web"]
    assert sorted(p.metadata.namespace for p in informer.list(selector=parse_selector("app=web"))) == ["default", "other"]
    assert [p.metadata.name for p in informer.list("default", parse_selector("app=db"))] == ["db"]


def test_owner_index_follows_owner_reference_changes(cluster):
    replica_set = cluster.replica_set("web", 1)
    cluster.pod("a", labels={"app": "web"}, owner=replica_set)
    cluster.pod("b", labels={"app": "web"})
    informer = Informer(cluster.client, "pods")
    informer.refresh()
    assert [p.metadata.name for p in informer.by_owner_uid(replica_set.metadata.uid)] == ["a"]

    cluster.registry.patch("pods", "default", "a", {"metadata": {"ownerReferences": None}})
    cluster.registry.patch("pods", "default", "b", {"metadata": {"ownerReferences": [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": replica_set.metadata.uid,
        "controller": True, "blockOwnerDeletion": True}]}})
    informer.refresh()

    assert [p.metadata.name for p in informer.by_owner_uid(replica_set.metadata.uid)] == ["b"]


def test_a_running_informer_follows_the_watch(cluster):
    informer = Informer(cluster.client, "pods")
    recorder = watched(informer)
    informer.start()
    try:
        assert informer.wait_for_sync(5)
        cluster.pod("a")
        recorder.wait_for(("add", "a"))
        cluster.set_pod_status("a", ready=True)
        recorder.wait_for(("update", "a"))
        cluster.registry.delete("pods", "default", "a")
        recorder.wait_for(("delete", "a"))
    finally:
        informer.stop()

    assert informer.get("default/a") is None
    update = next(entry for entry in recorder.seen if entry[0] == "update")
    assert update[2] != update[3], "on_update gets the old and the new object"


def test_a_compacted_history_makes_the_informer_list_again(cluster):
    cluster.pod("gone")
    informer = Informer(cluster.client, "pods")
    informer.refresh()
    recorder = watched(informer)
    cluster.registry.delete("pods", "default", "gone")
    for index in range(5):
        cluster.pod(f"new-{index}")
    cluster.store.compact(keep=1)  # the informer's resourceVersion is now too old: 410 Gone

    informer.start()
    try:
        recorder.wait_for(("delete", "gone"))
        recorder.wait_for(("add", "new-4"))
    finally:
        informer.stop()

    assert sorted(informer.keys()) == [f"default/new-{index}" for index in range(5)]


class _FlakyWatchClient:
    """Passes everything through, but the first watch call fails like a dropped connection."""

    def __init__(self, client):
        self._client = client
        self.watch_calls = 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def watch(self, *args, **kwargs):
        self.watch_calls += 1
        if self.watch_calls == 1:
            raise ConnectionResetError("connection reset by peer")
        return self._client.watch(*args, **kwargs)


def test_a_broken_watch_is_retried_after_listing_again(cluster, caplog):
    client = _FlakyWatchClient(cluster.client)
    informer = Informer(client, "pods")
    recorder = watched(informer)
    informer.start()
    try:
        assert informer.wait_for_sync(5)
        cluster.pod("after")
        recorder.wait_for(("add", "after"))
    finally:
        informer.stop()

    assert client.watch_calls >= 2
    assert "connection reset by peer" in caplog.text


def test_a_failing_handler_does_not_stop_the_others(cluster):
    cluster.pod("a")
    informer = Informer(cluster.client, "pods")

    def broken(obj):
        raise RuntimeError("handler bug")

    informer.add_event_handler(on_add=broken)
    recorder = watched(informer)
    informer.refresh()

    assert recorder.kinds() == [("add", "a")]


def test_shared_informers_hand_out_one_informer_per_resource_and_stop_with_the_last_user(cluster):
    informers = SharedInformers(cluster.client)
    pods = informers.informer("pods")

    assert informers.informer("pods") is pods
    assert informers.informer("replicasets") is not pods
    informers.start()
    pods.start()  # a second user, e.g. a controller
    assert informers.wait_for_sync(5)
    informers.stop()
    assert pods.running
    pods.stop()
    assert not pods.running


class _ConsistencyChecker:
    """Handlers that rebuild the cache from the events alone and note every impossible event
    (an add for a key already held, an update or delete for one never added)."""

    def __init__(self):
        self.state: dict[str, str] = {}
        self.impossible: list[tuple] = []
        self._lock = threading.Lock()

    def on_add(self, obj):
        with self._lock:
            key = cache_key(obj)
            if key in self.state:
                self.impossible.append(("duplicate add", key))
            self.state[key] = obj.metadata.resource_version

    def on_update(self, old, new):
        with self._lock:
            key = cache_key(new)
            if self.state.get(key) != old.metadata.resource_version:
                self.impossible.append(("update of unknown version", key, old.metadata.resource_version))
            self.state[key] = new.metadata.resource_version

    def on_delete(self, obj):
        with self._lock:
            key = cache_key(obj)
            if self.state.pop(key, None) is None:
                self.impossible.append(("delete of unknown", key))


def _hammer(registry, stop, writer, labels_flip=False):
    """Create, relabel and delete pods `w<writer>-<n>` until `stop` is set."""
    import random

    generator = random.Random(writer)
    alive: list[str] = []
    serial = 0
    while not stop.is_set():
        action = generator.random()
        if action < 0.4 or not alive:
            name = f"w{writer}-{serial}"
            serial += 1
            registry.create("pods", "default", {"metadata": {"name": name, "labels": {"tier": "a"}},
                                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
            alive.append(name)
        elif action < 0.75:
            name = generator.choice(alive)
            tier = generator.choice(["a", "b"]) if labels_flip else "a"
            registry.patch("pods", "default", name, {"metadata": {"labels": {"tier": tier, "n": str(serial)}}})
            serial += 1
        else:
            name = alive.pop(generator.randrange(len(alive)))
            registry.delete("pods", "default", name)


def _wait_until(condition, timeout, message):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.01)


def _converges_under_concurrent_writes(client, registry, label_selector=None):
    stop = threading.Event()
    writers = [threading.Thread(target=_hammer, args=(registry, stop, index, label_selector is not None))
               for index in range(3)]
    for writer in writers:
        writer.start()
    informer = Informer(client, "pods", label_selector=label_selector)
    checker = _ConsistencyChecker()
    try:
        # Generous deadlines: they only matter on a machine loaded by other test runs.
        _wait_until(lambda: registry.store.count("pods") >= 20, 60, lambda: "writers made no pods")
        informer.add_event_handler(checker.on_add, checker.on_update, checker.on_delete)
        informer.start()
        assert informer.wait_for_sync(60)
        synced_at = registry.store.revision
        _wait_until(lambda: int(informer.resource_version or 0) > synced_at + 200, 60,
                    lambda: "the writers did not keep writing while the informer watched")
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    try:
        listing = registry.list("pods", "default", label_selector=label_selector)
        expected = {f"default/{item['metadata']['name']}": item["metadata"]["resourceVersion"]
                    for item in listing["items"]}
        _wait_until(lambda: {key: obj.metadata.resource_version for key, obj in
                             ((key, informer.get(key)) for key in informer.keys())} == expected, 10,
                    lambda: f"cache {sorted(informer.keys())} never matched the list {sorted(expected)}")
    finally:
        informer.stop()
    assert checker.impossible == []
    assert checker.state == expected


def test_an_informer_started_during_concurrent_writes_converges_without_missing_or_duplicate_events(cluster):
    _converges_under_concurrent_writes(cluster.client, cluster.registry)


def test_a_label_selected_informer_follows_objects_moving_in_and_out_of_its_selection(cluster):
    _converges_under_concurrent_writes(cluster.client, cluster.registry, label_selector="tier=a")


def test_an_informer_over_http_converges_under_concurrent_writes(cluster, tmp_path):
    from minikube_py.apiserver.server import ApiHttpServer
    from minikube_py.client.api import ApiClient
    from minikube_py.client.transport import HttpTransport

    server = ApiHttpServer(cluster.registry, str(tmp_path / "api.sock"))
    server.start()
    try:
        client = ApiClient(HttpTransport(socket_path=server.socket_path))
        _converges_under_concurrent_writes(client, cluster.registry, label_selector="tier=a")
    finally:
        server.stop()


def test_an_informer_converges_while_compaction_keeps_expiring_its_resource_version(cluster):
    cluster.store.start_compactor(0.001, keep=3)
    _converges_under_concurrent_writes(cluster.client, cluster.registry, label_selector="tier=a")
    assert cluster.store.compacted_revision > 0


def _threads_named(prefix):
    return [thread for thread in threading.enumerate() if thread.name.startswith(prefix)]


def test_informers_of_an_in_process_client_share_one_thread(cluster):
    # Twenty in-process informers (the daemon has two dozen) must not cost twenty threads.
    namespaces = [f"ns-{index}" for index in range(20)]
    for namespace in namespaces:
        cluster.registry.create("namespaces", None, {"metadata": {"name": namespace}})
    before = threading.active_count()
    informers = [Informer(cluster.client, "configmaps", namespace=namespace) for namespace in namespaces]
    recorders = [watched(informer) for informer in informers]
    for informer in informers:
        informer.start()
    try:
        assert all(informer.wait_for_sync(10) for informer in informers)
        assert threading.active_count() - before <= 1
        assert not _threads_named("informer-configmaps")
        for namespace in namespaces:
            cluster.registry.create("configmaps", namespace, {"metadata": {"name": f"cm-{namespace}"}})
        for namespace, recorder in zip(namespaces, recorders, strict=True):
            recorder.wait_for(("add", f"cm-{namespace}"))
        assert all(informer.running for informer in informers)
    finally:
        for informer in informers:
            informer.stop()
    assert not any(informer.running for informer in informers)


def test_an_informer_over_http_keeps_a_thread_of_its_own(cluster, tmp_path):
    from minikube_py.apiserver.server import ApiHttpServer
    from minikube_py.client.api import ApiClient
    from minikube_py.client.transport import HttpTransport

    server = ApiHttpServer(cluster.registry, str(tmp_path / "api.sock"))
    server.start()
    informer = Informer(ApiClient(HttpTransport(socket_path=server.socket_path)), "secrets")
    try:
        informer.start()
        assert informer.wait_for_sync(10)
        assert len(_threads_named("informer-secrets")) == 1
    finally:
        informer.stop()
        server.stop()


def test_a_stopped_in_process_informer_tells_its_handlers_nothing_more(cluster):
    informer = Informer(cluster.client, "pods")
    recorder = watched(informer)
    informer.start()
    assert informer.wait_for_sync(5)
    cluster.pod("before")
    recorder.wait_for(("add", "before"))
    informer.stop()
    cluster.pod("after")
    # A later informer on the same dispatcher sees the pod, so the dispatcher had its chance.
    witness = Informer(cluster.client, "pods")
    witnessed = watched(witness)
    witness.start()
    try:
        witnessed.wait_for(("add", "after"))
    finally:
        witness.stop()
    assert ("add", "after") not in recorder.kinds()


def test_a_busy_in_process_informer_does_not_starve_the_others(cluster):
    from minikube_py.client.informer import DISPATCH_BATCH

    busy, quiet = Informer(cluster.client, "configmaps"), Informer(cluster.client, "secrets")
    held, release = threading.Event(), threading.Event()

    def hold_the_dispatcher(obj):  # the first event waits until every write below is queued
        if not held.is_set():
            held.set()
            release.wait(10)

    busy.add_event_handler(on_add=hold_the_dispatcher)
    busy_size_when_quiet_saw_its_event = []
    quiet.add_event_handler(on_add=lambda obj: busy_size_when_quiet_saw_its_event.append(len(busy)))
    busy.start()
    quiet.start()
    try:
        assert busy.wait_for_sync(5) and quiet.wait_for_sync(5)
        total = 4 * DISPATCH_BATCH
        cluster.registry.create("configmaps", "default", {"metadata": {"name": "cm-first"}})
        assert held.wait(5)
        for index in range(total):
            cluster.registry.create("configmaps", "default", {"metadata": {"name": f"cm-{index}"}})
        cluster.registry.create("secrets", "default", {"metadata": {"name": "s"}})
        release.set()
        _wait_until(lambda: busy_size_when_quiet_saw_its_event and len(busy) == total + 1, 10,
                    lambda: f"busy informer holds {len(busy)} of {total + 1}; quiet saw {busy_size_when_quiet_saw_its_event}")
    finally:
        release.set()
        busy.stop()
        quiet.stop()
    assert busy_size_when_quiet_saw_its_event[0] <= 2 * DISPATCH_BATCH, "the quiet informer waited for the whole backlog"


def test_the_store_watcher_signals_each_event_and_its_end():
    from minikube_py.api.errors import Gone
    from minikube_py.store.watch import LogEntry, Watcher

    signals = []
    watcher = Watcher("pods", None, [], on_close=lambda _watcher: None)
    watcher.on_ready(lambda: signals.append("ready"))
    assert signals == []
    watcher.deliver(LogEntry(1, "pods", "default", "a", "ADDED", '{"metadata": {"name": "a"}}', None))
    assert signals == ["ready"]
    assert watcher.next(0).object["metadata"]["name"] == "a"
    assert watcher.next(0) is None
    watcher.expire(Gone("compacted"))
    assert signals == ["ready", "ready"]

    waiting = Watcher("pods", None, [LogEntry(1, "pods", "default", "a", "ADDED", "{}", None)],
                      on_close=lambda _watcher: None)
    late = []
    waiting.on_ready(lambda: late.append("ready"))
    assert late == ["ready"], "a watcher with events already waiting signals when the callback is registered"
