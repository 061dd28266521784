"""ReplicaSet controller: sync driven by hand against the real API in memory (tests/unit/fakes.py)."""

from __future__ import annotations

import time

import pytest

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.times import format_time
from controllers.common import (
    ControllerExpectations,
    is_pod_available,
    pods_to_delete,
    slow_start_batch,
)
from controllers.replicaset import ReplicaSetController

NOW = 1_800_000_000.0


@pytest.fixture
def controller(cluster):
    return ReplicaSetController(cluster.client, cluster.clock, cluster.informers)


def owned_pods(cluster, replica_set):
    return [pod for pod in cluster.list("pods")
            if any(ref.uid == replica_set.metadata.uid for ref in pod.metadata.owner_references or [])]


def event_reasons(cluster):
    return [event.reason for event in cluster.list("events")]


# -- pure helpers ------------------------------------------------------------------------------


def make_pod(name, node="node-1", phase="Running", ready=True, ready_since=NOW - 3600, cost=None, restarts=0,
             created=NOW - 7200, uid=None):
    status = {"phase": phase, "containerStatuses": [{"name": "main", "restartCount": restarts}]}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                 "lastTransitionTime": format_time(ready_since)}]
    metadata = {"name": name, "namespace": "default", "uid": uid or f"uid-{name}",
                "creationTimestamp": format_time(created)}
    if cost is not None:
        metadata["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    spec = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return api.Pod.model_validate({"metadata": metadata, "spec": spec, "status": status})


@pytest.mark.parametrize(
    "rule, doomed, survivor",
    [
        ("unassigned before assigned", make_pod("a", node=None, phase="Pending", ready=False),
         make_pod("b", phase="Pending", ready=False)),
        ("pending before running", make_pod("a", phase="Pending", ready=False), make_pod("b", ready=False)),
        ("unknown before running", make_pod("a", phase="Unknown", ready=False), make_pod("b", ready=False)),
        ("not ready before ready", make_pod("a", ready=False), make_pod("b")),
        ("lower deletion cost first", make_pod("a", cost=-5, ready_since=NOW - 86400), make_pod("b", cost=10)),
        ("ready more recently first", make_pod("a", ready_since=NOW - 60), make_pod("b", ready_since=NOW - 7200)),
        ("more restarts first", make_pod("a", restarts=4), make_pod("b", restarts=1)),
        ("newer first", make_pod("a", created=NOW - 60), make_pod("b", created=NOW - 86400)),
    ],
)
def test_scale_down_ranking_rule(rule, doomed, survivor):
    assert pods_to_delete([survivor, doomed], 1, [survivor, doomed], NOW) == [doomed], rule
    assert pods_to_delete([doomed, survivor], 1, [survivor, doomed], NOW) == [doomed], rule


def test_scale_down_deletes_pods_on_crowded_nodes_first():
    crowded = [make_pod(f"c{i}", node="crowded") for i in range(3)]
    alone = make_pod("alone", node="quiet")

    victims = pods_to_delete([alone, *crowded], 2, [alone, *crowded], NOW)

    assert alone not in victims and len(victims) == 2


def test_scale_down_treats_similar_ages_alike_and_breaks_ties_by_uid():
    # Ready 100 s and 120 s ago fall in the same log2 bucket: the uid decides, not the age.
    younger = make_pod("younger", ready_since=NOW - 100, uid="uid-b")
    older = make_pod("older", ready_since=NOW - 120, uid="uid-a")

    assert pods_to_delete([younger, older], 1, [younger, older], NOW) == [older]


def test_scale_down_of_every_pod_skips_ranking():
    pods = [make_pod("b"), make_pod("a", ready=False)]

    assert pods_to_delete(pods, 5, pods, NOW) == pods


def test_pod_is_available_only_once_ready_for_min_ready_seconds():
    pod = make_pod("a", ready_since=NOW - 10)

    assert is_pod_available(pod, 0, NOW)
    assert is_pod_available(pod, 9, NOW)
    assert not is_pod_available(pod, 10, NOW), "ready + minReadySeconds must be strictly before now"
    assert not is_pod_available(make_pod("b", ready=False), 0, NOW)


def test_slow_start_batches_double_and_stop_after_the_batch_with_a_failure():
    calls = []

    def create():
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("quota exceeded")

    successes, error = slow_start_batch(20, 1, create)

    assert len(calls) == 1 + 2 + 4
    assert successes == 6
    assert str(error) == "quota exceeded"


def test_expectations_expire_after_five_minutes(cluster):
    expectations = ControllerExpectations(cluster.clock)
    expectations.expect_creations("default/web", 2)
    assert not expectations.satisfied("default/web")
    expectations.creation_observed("default/web")
    assert not expectations.satisfied("default/web")

    cluster.clock.advance(301)

    assert expectations.satisfied("default/web")


def test_a_deletion_seen_twice_is_counted_once(cluster):
    expectations = ControllerExpectations(cluster.clock)
    expectations.expect_deletions("default/web", ["default/a", "default/b"])
    expectations.deletion_observed("default/web", "default/a")
    expectations.deletion_observed("default/web", "default/a")

    assert expectations.pending("default/web") == (0, 1)
    assert not expectations.satisfied("default/web")


# -- the controller --------------------------------------------------------------------------


def test_scale_up_creates_pods_named_after_the_replica_set_with_a_controller_ref(cluster, controller):
    replica_set = cluster.replica_set("web", 3)
    cluster.settle(controller)

    pods = owned_pods(cluster, replica_set)
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.name.startswith("web-") and len(pod.metadata.name) == len("web-") + 5
        reference = pod.metadata.owner_references[0]
        assert (reference.kind, reference.name, reference.controller, reference.block_owner_deletion) == (
            "ReplicaSet", "web", True, True)
        assert pod.metadata.labels == {"app": "web"}
    assert event_reasons(cluster).count("SuccessfulCreate") == 3
    status = cluster.get("replicasets", "web").status
    assert (status.replicas, status.fully_labeled_replicas, status.observed_generation) == (3, 3, 1)


def test_a_failed_create_stops_slow_start_after_its_batch_and_is_retried(cluster, controller):
    cluster.replica_set("web", 10)
    cluster.client.fail("create", errors.Invalid("pods is forbidden: exceeded quota"), skip=3, resource="pods")
    cluster.refresh()

    controller.drain()

    assert len(cluster.client.calls_of("create", "pods")) == 1 + 2 + 4
    assert len(cluster.list("pods")) == 6
    assert controller.expectations.pending("default/web") == (6, 0)
    assert "FailedCreate" in event_reasons(cluster)
    failure = cluster.get("replicasets", "web").status.condition("ReplicaFailure")
    assert (failure.status, failure.reason, failure.message) == ("True", "FailedCreate", "pods is forbidden: exceeded quota")

    cluster.refresh()  # the six creations are observed
    cluster.clock.advance(1)  # past the retry back-off
    controller.drain()

    assert len(cluster.list("pods")) == 10
    assert cluster.get("replicasets", "web").status.condition("ReplicaFailure") is None


def test_expectations_block_a_second_create_while_the_cache_lags(cluster, controller):
    cluster.replica_set("web", 2)
    cluster.refresh()
    controller.drain()
    assert len(cluster.client.calls_of("create", "pods")) == 2

    controller.enqueue("default/web")  # the cache has not seen the two pods yet
    controller.drain()

    assert len(cluster.client.calls_of("create", "pods")) == 2
    cluster.settle(controller)
    assert len(cluster.client.calls_of("create", "pods")) == 2
    assert controller.expectations.satisfied("default/web")


def test_scale_down_deletes_the_not_ready_pod_and_expects_its_deletion(cluster, controller):
    replica_set = cluster.replica_set("web", 3)
    cluster.settle(controller)
    pods = sorted(owned_pods(cluster, replica_set), key=lambda pod: pod.metadata.name)
    for pod in pods[:2]:
        cluster.set_pod_status(pod.metadata.name, ready=True)
    cluster.set_pod_status(pods[2].metadata.name, ready=False)
    cluster.registry.patch("replicasets", "default", "web", {"spec": {"replicas": 2}})
    cluster.client.clear()
    cluster.refresh()

    controller.drain()

    deleted = [call.name for call in cluster.client.calls_of("delete", "pods")]
    assert deleted == [pods[2].metadata.name]
    assert controller.expectations.pending("default/web") == (0, 1)
    assert "SuccessfulDelete" in event_reasons(cluster)
    cluster.settle(controller)
    assert controller.expectations.satisfied("default/web")
    assert len(cluster.client.calls_of("delete", "pods")) == 1


def test_an_orphan_matching_the_selector_is_adopted_instead_of_creating(cluster, controller):
    cluster.pod("handmade", labels={"app": "web"})
    replica_set = cluster.replica_set("web", 1)
    cluster.settle(controller)

    assert cluster.client.calls_of("create", "pods") == []
    adopted = cluster.get("pods", "handmade")
    assert adopted.metadata.owner_references[0].uid == replica_set.metadata.uid
    assert adopted.metadata.owner_references[0].controller is True


def test_a_pod_whose_labels_changed_is_released_and_replaced(cluster, controller):
    replica_set = cluster.replica_set("web", 1)
    cluster.settle(controller)
    (pod,) = owned_pods(cluster, replica_set)

    cluster.registry.patch("pods", "default", pod.metadata.name, {"metadata": {"labels": {"app": "debug"}}})
    cluster.settle(controller)

    assert cluster.get("pods", pod.metadata.name).metadata.owner_references is None
    assert len(owned_pods(cluster, replica_set)) == 1
    assert len(cluster.list("pods")) == 2


def test_pods_of_another_controller_are_left_alone(cluster, controller):
    other = cluster.replica_set("other", 1, labels={"app": "web"})
    cluster.pod("theirs", labels={"app": "web"}, owner=other)
    cluster.replica_set("web", 1)
    cluster.settle(controller)

    assert cluster.get("pods", "theirs").metadata.owner_references[0].uid == other.metadata.uid
    assert len(cluster.client.calls_of("create", "pods")) == 1


def test_no_adoption_when_a_fresh_read_shows_the_replica_set_gone(cluster, controller):
    cluster.replica_set("web", 1)
    cluster.pod("handmade", labels={"app": "web"})
    cluster.refresh()
    cluster.registry.delete("replicasets", "default", "web")  # the cache still has it

    controller.drain()

    assert cluster.get("pods", "handmade").metadata.owner_references is None
    assert cluster.client.calls_of("create", "pods") == []


def test_available_replicas_count_pods_ready_for_min_ready_seconds(cluster, controller):
    replica_set = cluster.replica_set("web", 1, min_ready_seconds=10)
    cluster.settle(controller)
    (pod,) = owned_pods(cluster, replica_set)
    cluster.set_pod_status(pod.metadata.name, ready=True)
    cluster.refresh()

    controller.drain()
    status = cluster.get("replicasets", "web").status
    assert (status.ready_replicas, status.available_replicas) == (1, 0)

    cluster.clock.advance(10.5)  # the sync asked to look again after minReadySeconds
    controller.drain()
    status = cluster.get("replicasets", "web").status
    assert (status.ready_replicas, status.available_replicas) == (1, 1)


def test_a_pod_turning_ready_requeues_its_replica_set_after_min_ready_seconds_plus_one(cluster, controller):
    replica_set = cluster.replica_set("web", 2, min_ready_seconds=30)
    cluster.settle(controller)
    first, _ = owned_pods(cluster, replica_set)
    cluster.set_pod_status(first.metadata.name, ready=True)
    cluster.refresh()
    controller.drain()  # one of two ready: the sync itself asks for no requeue

    assert controller.queue.pending_delayed() == 1
    cluster.clock.advance(30.5)
    assert controller.drain() == 0
    cluster.clock.advance(1)
    assert controller.drain() == 1
    assert cluster.get("replicasets", "web").status.available_replicas == 1


def test_failed_pods_do_not_count_and_are_replaced_but_kept(cluster, controller):
    replica_set = cluster.replica_set("web", 1)
    cluster.settle(controller)
    (pod,) = owned_pods(cluster, replica_set)

    cluster.set_pod_status(pod.metadata.name, phase="Failed", ready=False)
    cluster.settle(controller)

    assert len(cluster.client.calls_of("create", "pods")) == 2
    assert cluster.client.calls_of("delete", "pods") == []
    assert cluster.get("pods", pod.metadata.name) is not None
    assert cluster.get("replicasets", "web").status.replicas == 1


def test_a_pod_being_deleted_is_replaced_at_once(cluster, controller):
    cluster.add_node()
    replica_set = cluster.replica_set("web", 1)
    cluster.settle(controller)
    (pod,) = owned_pods(cluster, replica_set)
    cluster.registry.bind("default", pod.metadata.name, "node-1")

    cluster.registry.delete("pods", "default", pod.metadata.name)  # graceful: the agent must stop it
    cluster.settle(controller)

    assert cluster.get("pods", pod.metadata.name).metadata.deletion_timestamp is not None
    assert len(cluster.client.calls_of("create", "pods")) == 2


def test_a_deleted_replica_set_forgets_its_expectations(cluster, controller):
    cluster.replica_set("web", 2)
    cluster.refresh()
    controller.drain()
    cluster.registry.delete("replicasets", "default", "web")

    cluster.settle(controller)

    assert controller.expectations.pending("default/web") == (0, 0)


def test_running_controllers_bring_a_replica_set_up_and_the_collector_takes_it_down(cluster):
    from controllers import build_controllers

    cluster.add_node("node-1")
    controllers = build_controllers(cluster.client, cluster.clock, cluster.informers)
    for running in controllers:
        running.run()
    try:
        replica_set = cluster.replica_set("web", 3)
        wait_until(lambda: sum(1 for pod in owned_pods(cluster, replica_set) if pod.spec.node_name == "node-1") == 3)
        cluster.registry.delete("replicasets", "default", "web")
        # Bound pods stop gracefully: with no node agent here they stay, marked for deletion.
        wait_until(lambda: all(pod.metadata.deletion_timestamp for pod in cluster.list("pods")))
        assert len(cluster.list("pods")) == 3
    finally:
        for running in controllers:
            running.stop()

    assert all(not informer.running for informer in cluster.informers.all())


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)
