"""The etcd store on a three-member etcd: losing a member changes nothing visible, losing quorum
makes writes fail with 503/504 while reads keep answering, and two API servers' stores on the same
etcd see every change in the same order."""

from __future__ import annotations

import threading

import pytest

from minikube_py.api import errors
from minikube_py.store.etcd import EtcdStore
from tests.etcd_cluster import ETCD, ETCD_MISSING, EtcdCluster, wait_until

pytestmark = pytest.mark.skipif(ETCD is None, reason=ETCD_MISSING)

_names = iter(range(1_000_000))


def pod(name: str, **fields) -> dict:
    return {"metadata": {"name": name, "namespace": "default"}, **fields}


@pytest.fixture
def own_trio():
    """Three members of this test's own, for tests that kill some."""
    with EtcdCluster(3, name="faults") as cluster:
        yield cluster


def cluster_name() -> str:
    return f"trio{next(_names)}"


def test_two_stores_on_one_etcd_see_every_change_in_the_same_order(etcd_trio):
    name = cluster_name()
    # Each API server talks to a different member first.
    with EtcdStore(etcd_trio.endpoints, name) as first, \
            EtcdStore(etcd_trio.endpoints[1:] + etcd_trio.endpoints[:1], name) as second:
        watches = [first.watch("pods"), second.watch("pods")]

        failures: list[BaseException] = []

        def write(store: EtcdStore, prefix: str) -> None:
            try:
                for index in range(30):
                    created = store.create("pods", pod(f"{prefix}{index}"))
                    store.update("pods", {**created, "n": 1}, expected_rv=created["metadata"]["resourceVersion"])
            except BaseException as error:
                failures.append(error)
                raise

        writers = [threading.Thread(target=write, args=(store, prefix)) for store, prefix in ((first, "a"), (second, "b"))]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        # A writer that failed (its thread ended with the error) leaves its events missing below:
        # say why here instead.
        assert not failures, failures
        seen = []
        for watch in watches:
            events = []
            while len(events) < 120 and (event := watch.next(timeout=10)) is not None:
                events.append((event.revision, event.type, event.object["metadata"]["name"]))
            seen.append(events)
        assert len(seen[0]) == 120 and seen[0] == seen[1]
        assert [revision for revision, _, _ in seen[0]] == sorted(revision for revision, _, _ in seen[0])
        assert first.list("pods") == second.list("pods")


def test_a_compare_and_swap_from_another_api_server_is_a_conflict(etcd_trio):
    name = cluster_name()
    with EtcdStore(etcd_trio.endpoints, name) as first, EtcdStore(etcd_trio.endpoints[2:], name) as second:
        created = first.create("pods", pod("shared"))
        wait_until(lambda: second.get("pods", "default", "shared"))
        second.update("pods", {**created, "by": "second"}, expected_rv=created["metadata"]["resourceVersion"])
        with pytest.raises(errors.Conflict):
            first.update("pods", {**created, "by": "first"}, expected_rv=created["metadata"]["resourceVersion"])
        assert wait_until(lambda: first.get("pods", "default", "shared").get("by") == "second")


def test_losing_the_member_a_store_talks_to_changes_nothing_visible(own_trio):
    leader = own_trio.leader()
    follower = (leader + 1) % 3
    endpoints = [own_trio.endpoints[follower]] + [e for i, e in enumerate(own_trio.endpoints) if i != follower]
    with EtcdStore(endpoints, cluster_name()) as store:
        watch = store.watch("pods")
        store.create("pods", pod("before"))
        own_trio.kill_member(follower)  # the member the store writes to and watches through
        after = store.create("pods", pod("after"))
        assert store.get("pods", "default", "after") == after
        names = [event.object["metadata"]["name"] for event in (watch.next(timeout=10), watch.next(timeout=10))]
        assert names == ["before", "after"]


def test_losing_the_leader_holds_writes_until_a_new_one_is_elected(own_trio):
    with EtcdStore(own_trio.endpoints, cluster_name()) as store:
        watch = store.watch("pods")
        own_trio.kill_member(own_trio.leader())
        # A write during the election waits for the new leader (it is tried again) rather than fail.
        created = store.create("pods", pod("after-election"))
        assert store.get("pods", "default", "after-election") == created
        event = watch.next(timeout=10)
        assert event is not None and event.object["metadata"]["name"] == "after-election"


def _answer_lost_once(store: EtcdStore, error: errors.ApiError, applied: bool) -> list:
    """The store's next transaction fails with `error`; with `applied`, after etcd made it (the
    answer was lost with a dying leader)."""
    real_call, failed = store._members.call, []

    def call(path: str, body: dict) -> dict:
        if path == "/kv/txn" and not failed:
            failed.append(path)
            if applied:
                real_call(path, body)
            raise error
        return real_call(path, body)

    store._members.call = call
    return failed


@pytest.mark.parametrize("applied", [True, False])
def test_a_write_whose_answer_timed_out_is_read_back_and_happens_once(etcd_trio, applied):
    with EtcdStore(etcd_trio.endpoints, cluster_name()) as store:
        watch = store.watch("pods")
        failed = _answer_lost_once(store, errors.Timeout("the etcd store did not answer in time"), applied)
        created = store.create("pods", pod("once"))
        assert failed and store.get("pods", "default", "once") == created
        failed.clear()
        updated = store.update("pods", {**created, "n": 1}, expected_rv=created["metadata"]["resourceVersion"])
        assert failed and store.get("pods", "default", "once") == updated and updated["n"] == 1
        events = [watch.next(timeout=10) for _ in range(2)]
        assert [(event.type, event.revision) for event in events if event is not None] == [
            ("ADDED", int(created["metadata"]["resourceVersion"])),
            ("MODIFIED", int(updated["metadata"]["resourceVersion"]))]
        assert watch.next(timeout=0.5) is None, "each write happened once"


@pytest.mark.parametrize("applied", [True, False])
def test_a_delete_whose_answer_timed_out_is_read_back_before_it_is_reported(etcd_trio, applied):
    with EtcdStore(etcd_trio.endpoints, cluster_name()) as store:
        created = store.create("pods", pod("doomed", n=1))
        watch = store.watch("pods", since=created["metadata"]["resourceVersion"])
        failed = _answer_lost_once(store, errors.Timeout("the etcd store did not answer in time"), applied)
        deleted = store.delete("pods", "default", "doomed", expected_rv=created["metadata"]["resourceVersion"])
        assert failed, "the delete's first answer was lost"
        # Reported as done (not NotFound, not a 504), with the object it deleted, exactly once.
        assert deleted["n"] == 1 and deleted["metadata"]["name"] == "doomed"
        assert int(deleted["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
        assert store.get("pods", "default", "doomed") is None
        event = watch.next(timeout=10)
        assert event is not None and event.type == "DELETED"
        assert watch.next(timeout=0.5) is None, "the delete happened once"
        # A delete of something already gone is still NotFound, even when its answer was lost.
        _answer_lost_once(store, errors.Timeout("the etcd store did not answer in time"), applied)
        with pytest.raises(errors.NotFound):
            store.delete("pods", "default", "doomed")


def test_a_write_etcd_refused_is_tried_again(etcd_trio):
    with EtcdStore(etcd_trio.endpoints, cluster_name()) as store:
        failed = _answer_lost_once(store, errors.ServiceUnavailable("etcdserver: no leader"), applied=False)
        created = store.create("pods", pod("again"))
        assert failed and store.get("pods", "default", "again") == created


def test_without_quorum_writes_fail_with_503_or_504_and_reads_keep_working(own_trio):
    threads_before = {thread.name for thread in threading.enumerate()}
    with EtcdStore(own_trio.endpoints, cluster_name()) as store:
        kept = store.create("pods", pod("kept"))
        watch = store.watch("pods")
        own_trio.kill_member(1)
        own_trio.kill_member(2)
        with pytest.raises((errors.ServiceUnavailable, errors.Timeout)) as raised:
            store.create("pods", pod("lost"))
        assert raised.value.code in (503, 504)
        assert raised.value.message.startswith(f"the etcd store at {own_trio.endpoints[0]} ")
        assert store.get("pods", "default", "kept") == kept
        assert store.list("pods")[0] == [kept]
        assert {thread.name for thread in threading.enumerate()} >= threads_before | {store._mirror.name}

        own_trio.start_member(1)  # a majority again: the same write goes through
        assert wait_until(lambda: _try_create(store, pod("back")), timeout=30)
        event = watch.next(timeout=10)
        assert event is not None and event.object["metadata"]["name"] in ("lost", "back")


def _try_create(store: EtcdStore, obj: dict) -> bool:
    try:
        store.create("pods", obj)
        return True
    except (errors.ServiceUnavailable, errors.Timeout):
        return False
