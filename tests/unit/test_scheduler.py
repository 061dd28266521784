"""Scheduler: binding pending pods to Ready nodes, and the Unschedulable condition when none fits."""

from __future__ import annotations

import pytest

from controllers.scheduler import Scheduler, unschedulable_message


@pytest.fixture
def scheduler(cluster):
    return Scheduler(cluster.client, cluster.clock, cluster.informers)


def pod_scheduled(cluster, name):
    return cluster.get("pods", name).status.condition("PodScheduled")


def test_a_pending_pod_is_bound_to_the_ready_node_with_an_event(cluster, scheduler):
    cluster.add_node("node-1")
    cluster.pod("web")

    cluster.settle(scheduler)

    pod = cluster.get("pods", "web")
    assert pod.spec.node_name == "node-1"
    assert pod_scheduled(cluster, "web").status == "True"
    (event,) = cluster.list("events")
    assert (event.type, event.reason, event.message) == ("Normal", "Scheduled", "Successfully assigned default/web to node-1")
    assert event.source.component == "default-scheduler"


def test_the_ready_node_with_the_fewest_pods_wins(cluster, scheduler):
    cluster.add_node("busy")
    cluster.add_node("idle")
    cluster.add_node("down", ready=False)
    cluster.pod("already-1", node_name="busy")
    cluster.pod("already-2", node_name="busy")
    cluster.pod("new-1")

    cluster.settle(scheduler)
    assert cluster.get("pods", "new-1").spec.node_name == "idle"

    cluster.pod("new-2")
    cluster.pod("new-3")
    cluster.settle(scheduler)
    placements = sorted(cluster.get("pods", name).spec.node_name for name in ("new-2", "new-3"))
    assert placements == ["busy", "idle"], "the second binding counts the first before the cache shows it"
    assert all(pod.spec.node_name != "down" for pod in cluster.list("pods"))


def test_node_selector_must_match_the_node_labels(cluster, scheduler):
    cluster.add_node("plain")
    cluster.add_node("gpu", labels={"accelerator": "gpu"})
    cluster.registry.create("pods", "default", {
        "metadata": {"name": "trainer"},
        "spec": {"nodeSelector": {"accelerator": "gpu"}, "containers": [{"name": "main", "image": "busybox"}]},
    })

    cluster.settle(scheduler)

    assert cluster.get("pods", "trainer").spec.node_name == "gpu"


def test_with_no_fitting_node_the_pod_is_marked_unschedulable_once(cluster, scheduler):
    cluster.add_node("node-1", ready=False)
    cluster.add_node("node-2", unschedulable=True)
    cluster.add_node("node-3", labels={"disk": "hdd"})
    cluster.registry.create("pods", "default", {
        "metadata": {"name": "web"},
        "spec": {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "main", "image": "busybox"}]},
    })

    cluster.settle(scheduler)
    cluster.settle(scheduler)

    condition = pod_scheduled(cluster, "web")
    assert (condition.status, condition.reason) == ("False", "Unschedulable")
    assert condition.message == (
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable."
    )
    assert len(cluster.client.calls_of("patch_status", "pods")) == 1
    assert cluster.get("pods", "web").spec.node_name is None
    assert [event.reason for event in cluster.list("events")] == ["FailedScheduling"]


def test_an_unschedulable_pod_is_bound_when_a_node_becomes_ready(cluster, scheduler):
    cluster.add_node("node-1", ready=False)
    cluster.pod("web")
    cluster.settle(scheduler)
    assert pod_scheduled(cluster, "web").status == "False"

    cluster.registry.patch_status("nodes", None, "node-1", {"status": {"conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2027-01-15T08:00:00Z"}]}})
    cluster.settle(scheduler)

    assert cluster.get("pods", "web").spec.node_name == "node-1"
    assert pod_scheduled(cluster, "web").status == "True"


def test_no_nodes_at_all_says_so():
    assert unschedulable_message(0, []) == "no nodes available to schedule pods"


def test_pods_already_bound_or_being_deleted_are_left_alone(cluster, scheduler):
    cluster.add_node("node-1")
    cluster.add_node("node-2")
    cluster.pod("pinned", node_name="node-2")
    cluster.registry.create("pods", "default", {
        "metadata": {"name": "leaving", "finalizers": ["example.com/hold"]},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    })
    cluster.registry.delete("pods", "default", "leaving")

    cluster.settle(scheduler)

    assert cluster.client.calls_of("bind") == []
    assert cluster.get("pods", "pinned").spec.node_name == "node-2"
    assert cluster.get("pods", "leaving").spec.node_name is None
