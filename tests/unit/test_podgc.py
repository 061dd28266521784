"""Pod garbage collector: orphans of a node that does not exist, and the terminated-pod threshold."""

from __future__ import annotations


from controllers.podgc import QUARANTINE_SECONDS, PodGarbageCollector


def collector(cluster, threshold=12500):
    return PodGarbageCollector(cluster.client, cluster.clock, cluster.informers, terminated_pod_threshold=threshold)


def bound_pod(cluster, name, node_name):
    cluster.pod(name)
    cluster.registry.bind("default", name, node_name)


def settle_after_quarantine(cluster, gc):
    cluster.settle(gc)
    cluster.clock.advance(QUARANTINE_SECONDS + 1)
    cluster.settle(gc)


def test_a_pod_bound_to_a_missing_node_is_marked_failed_and_deleted_after_the_quarantine(cluster):
    gc = collector(cluster)
    cluster.add_node("node-1")
    bound_pod(cluster, "orphan", "gone-node")
    bound_pod(cluster, "kept", "node-1")

    cluster.settle(gc)
    assert cluster.get("pods", "orphan") is not None, "a missing node is given time to show up"

    cluster.clock.advance(QUARANTINE_SECONDS + 1)
    cluster.settle(gc)
    assert cluster.get("pods", "orphan") is None
    assert cluster.get("pods", "kept") is not None
    (status_write,) = cluster.client.calls_of("patch_status", "pods")
    status = status_write.detail["status"]
    assert status["phase"] == "Failed"
    (condition,) = [condition for condition in status["conditions"] if condition["type"] == "DisruptionTarget"]
    assert any(condition["type"] == "PodScheduled" for condition in status["conditions"]), "other conditions stay"
    assert (condition["type"], condition["status"], condition["reason"], condition["message"]) == (
        "DisruptionTarget", "True", "DeletionByPodGC", "PodGC: node no longer exists")
    assert [call.name for call in cluster.client.calls_of("delete", "pods")] == ["orphan"]


def test_a_node_that_registers_during_the_quarantine_keeps_its_pods(cluster):
    gc = collector(cluster)
    bound_pod(cluster, "early", "late-node")
    cluster.settle(gc)
    cluster.add_node("late-node")
    settle_after_quarantine(cluster, gc)
    assert cluster.get("pods", "early") is not None
    assert cluster.client.calls_of("delete", "pods") == []


def test_deleting_a_node_collects_its_pods(cluster):
    gc = collector(cluster)
    cluster.add_node("node-1")
    bound_pod(cluster, "web", "node-1")
    settle_after_quarantine(cluster, gc)
    assert cluster.get("pods", "web") is not None

    cluster.registry.delete("nodes", None, "node-1")
    settle_after_quarantine(cluster, gc)
    assert cluster.get("pods", "web") is None


def test_an_orphan_changed_meanwhile_is_retried_not_overwritten(cluster):
    from minikube_py.api import errors

    gc = collector(cluster)
    bound_pod(cluster, "orphan", "gone-node")
    cluster.client.fail("patch_status", errors.Conflict("the object has been modified"), resource="pods")
    settle_after_quarantine(cluster, gc)
    assert cluster.get("pods", "orphan") is not None
    cluster.clock.advance(1)  # the retry's back-off
    cluster.settle(gc)
    assert cluster.get("pods", "orphan") is None
    assert len(cluster.client.calls_of("patch_status", "pods")) == 2


def test_an_already_terminal_orphan_is_deleted_without_a_status_write(cluster):
    gc = collector(cluster)
    bound_pod(cluster, "done", "gone-node")
    cluster.set_pod_status("done", phase="Succeeded", ready=False)
    settle_after_quarantine(cluster, gc)
    assert cluster.get("pods", "done") is None
    assert cluster.client.calls_of("patch_status", "pods") == []


def terminated_pod(cluster, name, phase="Succeeded", reason=None):
    cluster.pod(name)
    cluster.registry.bind("default", name, "node-1")
    status = {"phase": phase}
    if reason:
        status["reason"] = reason
    cluster.registry.patch_status("pods", "default", name, {"status": status})
    cluster.clock.advance(1)  # distinct creation timestamps for the following pods


def test_terminated_pods_beyond_the_threshold_are_deleted_oldest_first_evicted_before_all(cluster):
    gc = collector(cluster, threshold=2)
    cluster.add_node("node-1")
    for name in ("old-1", "old-2", "new-1"):
        terminated_pod(cluster, name)
    terminated_pod(cluster, "evicted", phase="Failed", reason="Evicted")
    cluster.pod("running")
    cluster.registry.bind("default", "running", "node-1")

    cluster.settle(gc)
    remaining = sorted(pod.metadata.name for pod in cluster.list("pods"))
    assert remaining == ["new-1", "old-2", "running"]


def test_the_threshold_zero_turns_the_terminated_rule_off(cluster):
    gc = collector(cluster, threshold=0)
    cluster.add_node("node-1")
    for name in ("a", "b"):
        terminated_pod(cluster, name)
    cluster.settle(gc)
    assert len(cluster.list("pods")) == 2


def test_the_daemon_runs_the_pod_garbage_collector_with_the_configured_threshold(cluster):
    from minikube_py.daemon import ClusterConfig, control_loops

    loops = control_loops(cluster.client, cluster.clock, ClusterConfig(name="t", terminated_pod_gc_threshold=7))
    (gc,) = [loop for loop in loops if isinstance(loop, PodGarbageCollector)]
    assert gc.terminated_pod_threshold == 7
    assert {type(loop).__name__ for loop in loops} >= {
        "ReplicaSetController", "DeploymentController", "GarbageCollector", "Scheduler", "PodGarbageCollector"}
