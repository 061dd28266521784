"""Taint eviction: NoExecute taints delete pods that do not tolerate them, at once or after their
tolerationSeconds, on the fake cluster and clock."""

from __future__ import annotations

import pytest

from controllers.tainteviction import TaintEvictionController, eviction_delay
from minikube_py.api.placement import Taint, Toleration


@pytest.fixture
def controller(cluster):
    return TaintEvictionController(cluster.client, cluster.clock, cluster.informers)


def taint_node(cluster, name, *taints):
    cluster.registry.patch("nodes", None, name, {"spec": {"taints": list(taints)}})


def bound_pod(cluster, name, tolerations=None):
    cluster.create("pods", {"metadata": {"name": name}, "spec": {
        "nodeName": "n1", "containers": [{"name": "main", "image": "busybox"}],
        **({"tolerations": tolerations} if tolerations is not None else {})}})


def being_deleted(cluster, name):
    pod = cluster.get("pods", name)
    return pod is None or pod.metadata.deletion_timestamp is not None


NO_EXECUTE = {"key": "maintenance", "value": "now", "effect": "NoExecute"}


@pytest.mark.parametrize(("tolerations", "expected"), [
    ([], 0.0),
    ([Toleration(key="maintenance", operator="Exists", effect="NoExecute")], None),
    ([Toleration(key="maintenance", operator="Exists", effect="NoExecute", toleration_seconds=60),
      Toleration(operator="Exists", toleration_seconds=30)], 30.0),
    ([Toleration(key="other", operator="Exists")], 0.0),
    ([Toleration(key="maintenance", operator="Exists", toleration_seconds=-5)], 0.0),
])
def test_eviction_delay_table(tolerations, expected):
    assert eviction_delay(tolerations, [Taint(key="maintenance", value="now", effect="NoExecute")]) == expected


def test_a_pod_without_a_toleration_is_evicted_at_once_with_the_taint_managers_marks(cluster, controller):
    cluster.add_node("n1")
    bound_pod(cluster, "plain")
    bound_pod(cluster, "tolerant", tolerations=[{"key": "maintenance", "operator": "Exists", "effect": "NoExecute"}])
    cluster.settle(controller)
    assert not being_deleted(cluster, "plain")

    taint_node(cluster, "n1", NO_EXECUTE)
    cluster.settle(controller)

    plain = cluster.get("pods", "plain")
    assert plain.metadata.deletion_timestamp is not None
    target = plain.status.condition("DisruptionTarget")
    assert (target.reason, target.message) == ("DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
    assert not being_deleted(cluster, "tolerant")
    events = [(e.reason, e.message) for e in cluster.list("events")]
    assert ("TaintManagerEviction", "Marking for deletion Pod default/plain") in events


def test_a_pod_tolerating_for_a_while_goes_when_its_seconds_are_up(cluster, controller):
    cluster.add_node("n1")
    bound_pod(cluster, "patient", tolerations=[{"key": "maintenance", "operator": "Exists", "effect": "NoExecute",
                                                "tolerationSeconds": 60}])
    taint_node(cluster, "n1", NO_EXECUTE)
    cluster.settle(controller)
    cluster.clock.advance(59)
    cluster.settle(controller)
    assert not being_deleted(cluster, "patient")
    cluster.clock.advance(2)
    cluster.settle(controller)
    assert being_deleted(cluster, "patient")


def test_removing_the_taint_in_time_keeps_the_pod(cluster, controller):
    cluster.add_node("n1")
    bound_pod(cluster, "patient", tolerations=[{"key": "maintenance", "operator": "Exists", "effect": "NoExecute",
                                                "tolerationSeconds": 60}])
    taint_node(cluster, "n1", NO_EXECUTE)
    cluster.settle(controller)
    cluster.clock.advance(30)
    cluster.registry.patch("nodes", None, "n1", {"spec": {"taints": None}})
    cluster.settle(controller)
    cluster.clock.advance(60)
    cluster.settle(controller)
    assert not being_deleted(cluster, "patient")


def test_the_deadline_counts_from_the_taints_time_added(cluster, controller):
    cluster.add_node("n1")
    bound_pod(cluster, "patient", tolerations=[{"key": "maintenance", "operator": "Exists", "effect": "NoExecute",
                                                "tolerationSeconds": 60}])
    cluster.clock.advance(100)
    from minikube_py.api.times import format_time
    taint_node(cluster, "n1", {**NO_EXECUTE, "timeAdded": format_time(cluster.clock.now() - 90)})
    cluster.settle(controller)
    assert being_deleted(cluster, "patient")


def test_default_tolerations_give_pods_five_minutes_on_a_not_ready_node(cluster, controller):
    cluster.add_node("n1")
    bound_pod(cluster, "web")  # admission adds the 300 s not-ready/unreachable tolerations
    taint_node(cluster, "n1", {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"})
    cluster.settle(controller)
    cluster.clock.advance(299)
    cluster.settle(controller)
    assert not being_deleted(cluster, "web")
    cluster.clock.advance(2)
    cluster.settle(controller)
    assert being_deleted(cluster, "web")


def test_no_schedule_taints_evict_nothing(cluster, controller):
    cluster.add_node("n1")
    bound_pod(cluster, "web")
    taint_node(cluster, "n1", {"key": "maintenance", "effect": "NoSchedule"})
    cluster.settle(controller)
    assert not being_deleted(cluster, "web")
