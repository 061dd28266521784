"""The node lifecycle controller on a fake clock: a node silent for the grace period goes Unknown
and is tainted unreachable, its pods lose Ready, one that comes back is cleared, and skewed node
clocks change nothing because only the moment a renewal is *seen* counts."""

from __future__ import annotations

import pytest

from controllers.nodelifecycle import (FULL_DISRUPTION, NORMAL, PARTIAL_DISRUPTION, NodeLifecycleController,
                                       disruption_state, merged_taints)
from minikube_py.api.times import format_time
from minikube_py.client.leaderelection import micro_time

GRACE = 40.0


@pytest.fixture
def controller(cluster):
    return NodeLifecycleController(cluster.client, cluster.clock, cluster.informers, grace_period=GRACE)


def renew(cluster, name: str, skew: float = 0.0) -> None:
    """What a node agent's lease loop does, on a node clock `skew` seconds off."""
    stamp = micro_time(cluster.clock.now() + skew)
    try:
        lease = cluster.registry.get("leases", "kube-node-lease", name)
    except Exception:
        cluster.registry.create("leases", "kube-node-lease", {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": stamp}})
        return
    lease["spec"]["renewTime"] = stamp
    cluster.registry.replace("leases", "kube-node-lease", name, lease)


def post_ready(cluster, name: str, status: str = "True") -> None:
    """What a node agent's heartbeat writes: Ready with a fresh lastHeartbeatTime."""
    stamp = format_time(cluster.clock.now())
    cluster.registry.patch_status("nodes", None, name, {"status": {"conditions": [
        {"type": "Ready", "status": status, "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}]}})


def node(cluster, name: str) -> dict:
    return cluster.registry.get("nodes", None, name)


def ready(cluster, name: str) -> dict:
    return next(c for c in node(cluster, name)["status"]["conditions"] if c["type"] == "Ready")


def taints(cluster, name: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node(cluster, name)["spec"].get("taints") or []}


def three_nodes(cluster, controller) -> None:
    for name in ("node-1", "node-2", "node-3"):
        cluster.add_node(name)
        renew(cluster, name)
    cluster.settle(controller)


def pass_time(cluster, controller, seconds: float, renewing: tuple[str, ...], step: float = 10.0, skew: float = 0.0):
    """Let `seconds` pass in steps, the `renewing` nodes renewing their Leases at each."""
    passed = 0.0
    while passed < seconds:
        cluster.clock.advance(step)
        passed += step
        for name in renewing:
            renew(cluster, name, skew)
        cluster.settle(controller)
        for name in [n["metadata"]["name"] for n in cluster.registry.list("nodes")["items"]]:
            controller.enqueue(name)  # what the requeue timers would do
        cluster.settle(controller)


UNREACHABLE = {("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/unreachable", "NoSchedule")}


def test_a_node_renewing_its_lease_stays_ready_without_status_updates(cluster, controller):
    three_nodes(cluster, controller)
    pass_time(cluster, controller, 120, renewing=("node-1", "node-2", "node-3"))
    assert ready(cluster, "node-2")["status"] == "True"
    assert taints(cluster, "node-2") == set()


def test_a_silent_node_goes_unknown_after_the_grace_period_and_is_tainted_unreachable(cluster, controller):
    three_nodes(cluster, controller)
    pod = cluster.pod("web", node_name="node-3")
    cluster.set_pod_status("web", ready=True)
    pass_time(cluster, controller, 30, renewing=("node-1", "node-2"))
    assert ready(cluster, "node-3")["status"] == "True"  # 30 s: within the grace period
    pass_time(cluster, controller, 20, renewing=("node-1", "node-2"))
    condition = ready(cluster, "node-3")
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert taints(cluster, "node-3") == UNREACHABLE
    no_execute = next(t for t in node(cluster, "node-3")["spec"]["taints"] if t["effect"] == "NoExecute")
    assert no_execute["timeAdded"]
    assert taints(cluster, "node-1") == set()
    pod_ready = next(c for c in cluster.registry.get("pods", "default", pod.metadata.name)["status"]["conditions"]
                     if c["type"] == "Ready")
    assert pod_ready["status"] == "False"
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in cluster.registry.list("events", None)["items"]}
    assert {("node-3", "NodeNotReady"), ("web", "NodeNotReady")} <= reasons


def test_a_node_that_comes_back_is_ready_and_untainted_again(cluster, controller):
    three_nodes(cluster, controller)
    pass_time(cluster, controller, 60, renewing=("node-1", "node-2"))
    assert taints(cluster, "node-3") == UNREACHABLE
    post_ready(cluster, "node-3")
    renew(cluster, "node-3")
    cluster.settle(controller)
    assert ready(cluster, "node-3")["status"] == "True"
    assert taints(cluster, "node-3") == set()


def test_a_node_clock_hours_behind_or_ahead_does_not_flap(cluster, controller):
    """renewTime is never compared with the controller's clock, only watched for change."""
    three_nodes(cluster, controller)
    pass_time(cluster, controller, 200, renewing=("node-1", "node-2", "node-3"), skew=-3 * 3600)
    pass_time(cluster, controller, 200, renewing=("node-1", "node-2", "node-3"), skew=+3 * 3600)
    assert all(ready(cluster, name)["status"] == "True" for name in ("node-1", "node-2", "node-3"))
    assert not any(taints(cluster, name) for name in ("node-1", "node-2", "node-3"))


def test_a_lease_stamped_far_in_the_future_still_expires_once_it_stops_changing(cluster, controller):
    three_nodes(cluster, controller)
    renew(cluster, "node-3", skew=+24 * 3600)
    pass_time(cluster, controller, 60, renewing=("node-1", "node-2"))
    assert ready(cluster, "node-3")["status"] == "Unknown"


def test_a_node_reporting_not_ready_gets_the_not_ready_taints(cluster, controller):
    three_nodes(cluster, controller)
    post_ready(cluster, "node-2", status="False")
    cluster.settle(controller)
    assert taints(cluster, "node-2") == {("node.kubernetes.io/not-ready", "NoExecute"),
                                         ("node.kubernetes.io/not-ready", "NoSchedule")}


def test_when_no_node_is_ready_nothing_is_tainted_for_eviction(cluster, controller):
    """Full disruption: the control plane is more likely the one cut off; evicting everything helps nobody."""
    three_nodes(cluster, controller)
    pass_time(cluster, controller, 60, renewing=())
    assert all(ready(cluster, name)["status"] == "Unknown" for name in ("node-1", "node-2", "node-3"))
    assert all(taints(cluster, name) == {("node.kubernetes.io/unreachable", "NoSchedule")}
               for name in ("node-1", "node-2", "node-3"))


def test_a_cordoned_node_gets_the_unschedulable_taint_and_loses_it_when_uncordoned(cluster, controller):
    three_nodes(cluster, controller)
    cluster.registry.patch("nodes", None, "node-1", {"spec": {"unschedulable": True}})
    cluster.settle(controller)
    assert taints(cluster, "node-1") == {("node.kubernetes.io/unschedulable", "NoSchedule")}
    cluster.registry.patch("nodes", None, "node-1", {"spec": {"unschedulable": None}})
    cluster.settle(controller)
    assert taints(cluster, "node-1") == set()


def test_other_taints_are_left_alone_and_ours_keep_their_time_added():
    current = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
               {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}]
    wanted = [("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/unreachable", "NoSchedule")]
    merged = merged_taints(current, wanted, "2026-06-01T00:00:00Z")
    assert merged == current + [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    assert merged_taints(merged, [], "x") == [current[0]]


@pytest.mark.parametrize("statuses, state", [
    (["True", "True", "Unknown"], NORMAL),
    (["Unknown", "Unknown"], FULL_DISRUPTION),
    (["True", "True", "Unknown", "Unknown", "False"], PARTIAL_DISRUPTION),  # 3 of 5 >= 55 %
    (["True", "Unknown", "Unknown"], NORMAL),  # only two not ready: never a partial disruption
])
def test_the_disruption_state_follows_kubernetes_thresholds(statuses, state):
    assert disruption_state(statuses) == state


def test_the_daemon_runs_the_controller_with_the_configured_grace_period(cluster):
    from minikube_py.daemon import ClusterConfig, control_loops

    loops = control_loops(cluster.client, cluster.clock, ClusterConfig(name="t", node_monitor_grace_period=12))
    (lifecycle,) = [loop for loop in loops if isinstance(loop, NodeLifecycleController)]
    assert lifecycle.grace_period == 12


NOT_READY_NO_EXECUTE = ("node.kubernetes.io/not-ready", "NoExecute")


def five_nodes(cluster, controller) -> None:
    for name in ("node-1", "node-2", "node-3", "node-4", "node-5"):
        cluster.add_node(name)
        renew(cluster, name)
    cluster.settle(controller)


def test_nodes_lost_together_are_tainted_no_execute_one_per_ten_seconds(cluster, controller):
    """--node-eviction-rate 0.1: the first lost node at once, the next once a token is back."""
    five_nodes(cluster, controller)
    post_ready(cluster, "node-4", status="False")
    post_ready(cluster, "node-5", status="False")
    cluster.settle(controller)
    no_execute = [name for name in ("node-4", "node-5") if NOT_READY_NO_EXECUTE in taints(cluster, name)]
    assert len(no_execute) == 1
    (waiting,) = {"node-4", "node-5"} - set(no_execute)
    assert taints(cluster, waiting) == {("node.kubernetes.io/not-ready", "NoSchedule")}
    assert 9.0 < controller.sync(waiting) <= 10.1  # it looks again when the next token comes
    cluster.clock.advance(5)
    controller.enqueue(waiting)
    cluster.settle(controller)
    assert NOT_READY_NO_EXECUTE not in taints(cluster, waiting)
    cluster.clock.advance(5)
    controller.enqueue(waiting)
    cluster.settle(controller)
    assert NOT_READY_NO_EXECUTE in taints(cluster, waiting)


def test_an_eviction_rate_of_zero_never_taints_no_execute(cluster):
    controller = NodeLifecycleController(cluster.client, cluster.clock, cluster.informers, grace_period=GRACE,
                                         eviction_rate=0)
    three_nodes(cluster, controller)
    post_ready(cluster, "node-2", status="False")
    pass_time(cluster, controller, 60, renewing=("node-1", "node-2", "node-3"))
    assert taints(cluster, "node-2") == {("node.kubernetes.io/not-ready", "NoSchedule")}


def test_a_not_ready_node_turning_unreachable_swaps_its_taint_without_waiting(cluster):
    controller = NodeLifecycleController(cluster.client, cluster.clock, cluster.informers, grace_period=GRACE,
                                         eviction_rate=0.001)  # one token now, the next in 1000 s
    five_nodes(cluster, controller)
    post_ready(cluster, "node-5", status="False")
    cluster.settle(controller)
    assert NOT_READY_NO_EXECUTE in taints(cluster, "node-5")
    pass_time(cluster, controller, 50, renewing=("node-1", "node-2", "node-3", "node-4"), step=5)
    assert ready(cluster, "node-5")["status"] == "Unknown"
    assert taints(cluster, "node-5") == UNREACHABLE


def test_the_daemon_runs_the_controller_with_the_configured_eviction_rate(cluster):
    from minikube_py.daemon import ClusterConfig, control_loops

    loops = control_loops(cluster.client, cluster.clock, ClusterConfig(name="t", node_eviction_rate=0.5))
    (lifecycle,) = [loop for loop in loops if isinstance(loop, NodeLifecycleController)]
    assert lifecycle.eviction_rate == 0.5
