"""The node lifecycle controller: notices nodes that stopped reporting, as kube-controller-manager's
does (k/k `pkg/controller/nodelifecycle`).

Liveness is read from two signals the node agent writes: its Lease in `kube-node-lease` (renewed
every 10 s) and its Ready condition's `lastHeartbeatTime`. Neither is compared with this
controller's clock: a node's clock may be skewed by minutes. What counts is *when this controller
saw either change* (Kubernetes' `probeTimestamp`), on its own clock. A node whose signals have not
changed for the grace period (`--node-monitor-grace-period`, 40 s) gets every condition it reports
(Ready, MemoryPressure, DiskPressure, PIDPressure) set to `Unknown` with reason `NodeStatusUnknown`
and message "Kubelet stopped posting node status." (`NodeStatusNeverUpdated` / "Kubelet never
posted node status." for a node that never reported one), the event `NodeNotReady`, and its pods'
Ready condition set to False (so Services stop sending them traffic).

Taints follow the Ready condition (TaintBasedEvictions and TaintNodesByCondition):

| Ready   | NoExecute taint                      | NoSchedule taint                      |
|---------|--------------------------------------|---------------------------------------|
| False   | `node.kubernetes.io/not-ready`       | `node.kubernetes.io/not-ready`        |
| Unknown | `node.kubernetes.io/unreachable`     | `node.kubernetes.io/unreachable`      |
| True    | none of these                        | none of these                         |

plus `node.kubernetes.io/unschedulable:NoSchedule` while `spec.unschedulable` is set. The taint
eviction controller (controllers/tainteviction.py) evicts pods that do not tolerate a NoExecute
taint, after their `tolerationSeconds`. NoExecute taints are held back, and removed, while the
cluster looks like the control plane is the one cut off, as Kubernetes' zone states say: when no
node is Ready (full disruption), or when at least 55 % of more than two nodes are not Ready in a
cluster of at most 50 nodes (partial disruption, where a small cluster's eviction rate is zero).
As Kubernetes, NoExecute taints are rate limited (`--node-eviction-rate`, 0.1 nodes a second: a
token bucket holding one token, client-go's), so a wave of nodes lost at once is tainted, and its
pods evicted, one node every ten seconds; a node that is already tainted not-ready and turns
unreachable swaps its taint at once, and NoSchedule taints and their removal are never held back.

A node that comes back renews its Lease and posts Ready=True: the taints go, and its agent stops
and deletes whatever pods were evicted meanwhile (they were deleted with a grace period, which
only the node's agent can finish).

Shape: one key per node; Node and Lease events enqueue it; `sync` re-reads both from the caches,
updates this controller's observation of the node, and returns when to look again (the moment
the grace period would run out). A change of one node's readiness re-enqueues every node, since
the disruption state is the cluster's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from minikube_py.api import errors
from minikube_py.api.coordination import Lease
from minikube_py.api.core import Node
from minikube_py.api.times import format_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import EventRecorder
from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

COMPONENT = "node-controller"
NODE_LEASE_NAMESPACE = "kube-node-lease"
DEFAULT_GRACE_PERIOD_SECONDS = 40.0  # --node-monitor-grace-period
MONITOR_PERIOD_SECONDS = 5.0  # --node-monitor-period: how often a node is looked at, at the latest
DEFAULT_EVICTION_RATE = 0.1  # --node-eviction-rate: nodes a second that may get a NoExecute taint
EVICTION_BURST = 1  # k/k nodelifecycle's EvictionRateLimiterBurst

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
MANAGED_TAINTS = (TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE)
CONDITIONS_UNKNOWN_WHEN_SILENT = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

# Zone disruption (k/k nodelifecycle: unhealthyZoneThreshold, largeClusterSizeThreshold).
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_SIZE = 50
NORMAL, PARTIAL_DISRUPTION, FULL_DISRUPTION = "Normal", "PartialDisruption", "FullDisruption"


@dataclass
class NodeHealth:
    """What this controller last saw of a node, and when (on its own clock)."""

    probe_time: float  # when a heartbeat or Lease renewal was last seen to change
    heartbeat: str | None  # the Ready condition's lastHeartbeatTime then
    renew_time: str | None  # the Lease's renewTime then
    ready: str | None = None  # the Ready status this controller last acted on


def ready_status(node: Node) -> str | None:
    for condition in node.status.conditions or []:
        if condition.type == "Ready":
            return condition.status
    return None


def _ready_heartbeat(node: Node) -> str | None:
    for condition in node.status.conditions or []:
        if condition.type == "Ready":
            return condition.last_heartbeat_time
    return None


def disruption_state(ready_statuses: list[str | None]) -> str:
    """The cluster's state from its nodes' Ready statuses (Kubernetes computes it per zone; here
    the cluster is one zone)."""
    not_ready = sum(1 for status in ready_statuses if status != "True")
    ready = len(ready_statuses) - not_ready
    if not_ready > 0 and ready == 0:
        return FULL_DISRUPTION
    if not_ready > 2 and not_ready / len(ready_statuses) >= UNHEALTHY_ZONE_THRESHOLD:
        # A small cluster's secondary eviction rate is zero: nothing is evicted in this state.
        return PARTIAL_DISRUPTION if len(ready_statuses) <= LARGE_CLUSTER_SIZE else NORMAL
    return NORMAL


def wanted_taints(node: Node, state: str) -> list[tuple[str, str]]:
    """(key, effect) of the taints this controller wants on the node."""
    status = ready_status(node)
    wanted = []
    if status == "False":
        wanted.append((TAINT_NOT_READY, "NoSchedule"))
    elif status == "Unknown":
        wanted.append((TAINT_UNREACHABLE, "NoSchedule"))
    if state == NORMAL and status == "False":
        wanted.append((TAINT_NOT_READY, "NoExecute"))
    elif state == NORMAL and status == "Unknown":
        wanted.append((TAINT_UNREACHABLE, "NoExecute"))
    if node.spec.unschedulable:
        wanted.append((TAINT_UNSCHEDULABLE, "NoSchedule"))
    return wanted


class TokenBucket:
    """client-go's token bucket rate limiter on a controller's clock: `rate` tokens a second, at
    most `burst` held, full at the start; a rate of 0 never accepts (NewFakeNeverRateLimiter)."""

    def __init__(self, rate: float, burst: int, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def try_accept(self, now: float) -> bool:
        """Take a token if one is there."""
        if self.rate <= 0:
            return False
        self._refill(now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def wait(self, now: float) -> float:
        """Seconds until a token is there (MONITOR_PERIOD_SECONDS when none ever comes)."""
        if self.rate <= 0:
            return MONITOR_PERIOD_SECONDS
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) / self.rate)


def merged_taints(current: list[dict[str, Any]], wanted: list[tuple[str, str]], now: str) -> list[dict[str, Any]]:
    """The node's taints with ours made to be exactly `wanted`; others' taints untouched, ours kept
    as they are (their timeAdded) when still wanted, new NoExecute ones stamped with `now`."""
    kept = [taint for taint in current
            if taint.get("key") not in MANAGED_TAINTS or (taint.get("key"), taint.get("effect")) in wanted]
    present = {(taint.get("key"), taint.get("effect")) for taint in kept}
    for key, effect in wanted:
        if (key, effect) not in present:
            taint: dict[str, Any] = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = now
            kept.append(taint)
    return kept


class NodeLifecycleController(Controller[str]):
    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 grace_period: float = DEFAULT_GRACE_PERIOD_SECONDS, eviction_rate: float = DEFAULT_EVICTION_RATE):
        super().__init__(COMPONENT, clock)
        self.client = client
        self.grace_period = grace_period
        self.eviction_rate = eviction_rate
        self.no_execute_tainter = TokenBucket(eviction_rate, EVICTION_BURST, self.clock.monotonic())
        self.recorder = EventRecorder(client, COMPONENT, self.clock)
        self.health: dict[str, NodeHealth] = {}
        informers = informers or shared_informers(client)
        self.nodes = self.watch(informers.informer("nodes"), self._node_event, lambda old, new: self._node_event(new),
                                self._node_deleted)
        self.leases = self.watch(informers.informer("leases", NODE_LEASE_NAMESPACE), self._lease_event,
                                 lambda old, new: self._lease_event(new))
        self.pods = self.watch(informers.informer("pods"))

    def _node_event(self, node: Node) -> None:
        self.enqueue(node.metadata.name or "")

    def _node_deleted(self, node: Node) -> None:
        self.health.pop(node.metadata.name or "", None)
        self._enqueue_all()  # the disruption state may have changed

    def _lease_event(self, lease: Lease) -> None:
        self.enqueue(lease.metadata.name or "")

    def _enqueue_all(self) -> None:
        for node in self.nodes.list():
            self.enqueue(node.metadata.name or "")

    # ------------------------------------------------------------------------------------------

    def sync(self, name: str) -> float | None:
        node = self.nodes.get(name)
        if node is None:
            self.health.pop(name, None)
            return None
        now = self.clock.now()
        health = self._observe(node, now)
        silent_for = now - health.probe_time
        if silent_for > self.grace_period:
            node = self._mark_unknown(node, now) or node
        status = ready_status(node)
        if status != health.ready:
            became_not_ready = health.ready == "True" and status != "True"
            health.ready = status
            if became_not_ready:
                self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
                self._mark_pods_not_ready(name)
            self._enqueue_all()
        state = disruption_state([ready_status(other) for other in self.nodes.list()])
        held_back = self._reconcile_taints(node, state, now)
        if held_back is not None:
            return held_back
        if status == "True":
            return max(0.0, self.grace_period - silent_for) + 0.5
        return MONITOR_PERIOD_SECONDS

    def _observe(self, node: Node, now: float) -> NodeHealth:
        """Update what was seen of the node: a changed heartbeat or Lease renewal is a probe now."""
        name = node.metadata.name or ""
        heartbeat = _ready_heartbeat(node)
        lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
        renew_time = lease.spec.renew_time if lease is not None else None
        health = self.health.get(name)
        if health is None:
            # First sight: as Kubernetes, trust it for one grace period from now (or, for a node
            # that never reported, from its creation: it gets the grace period once).
            health = self.health[name] = NodeHealth(now, heartbeat, renew_time, None)
            return health
        if heartbeat != health.heartbeat or renew_time != health.renew_time:
            health.probe_time, health.heartbeat, health.renew_time = now, heartbeat, renew_time
        return health

    def _mark_unknown(self, node: Node, now: float) -> Any:
        """Every condition the node reports (and Ready, which it may never have) becomes Unknown."""
        conditions = [condition.to_dict() for condition in node.status.conditions or []]
        stamp = format_time(now)
        changed = False
        by_type = {condition["type"]: condition for condition in conditions}
        for type_ in CONDITIONS_UNKNOWN_WHEN_SILENT:
            condition = by_type.get(type_)
            if condition is None:
                if type_ != "Ready" and conditions:
                    continue  # only Ready is added to a node that reports others
                conditions.append({"type": type_, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                                   "message": "Kubelet never posted node status.", "lastHeartbeatTime": stamp,
                                   "lastTransitionTime": stamp})
                changed = True
            elif condition.get("status") != "Unknown":
                condition.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                                  "message": "Kubelet stopped posting node status.", "lastTransitionTime": stamp})
                changed = True
        if not changed:
            return None
        log.info("node %s: no Lease renewal or status for over %.0fs: conditions Unknown", node.metadata.name,
                 self.grace_period)
        try:
            updated = self.client.patch_status("nodes", node.metadata.name or "", {
                "metadata": {"resourceVersion": node.metadata.resource_version}, "status": {"conditions": conditions}})
        except errors.Conflict:
            return None  # the node wrote meanwhile: the next sync sees it
        return updated

    def _mark_pods_not_ready(self, node_name: str) -> None:
        """kube-controller-manager's MarkPodsNotReady: the node's pods' Ready condition False."""
        stamp = format_time(self.clock.now())
        for pod in self.pods.list():
            if pod.spec.node_name != node_name or pod.status.phase in ("Succeeded", "Failed"):
                continue
            conditions = [condition.to_dict() for condition in pod.status.conditions or []]
            ready = next((condition for condition in conditions if condition["type"] == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            ready.update({"status": "False", "lastTransitionTime": stamp})
            try:
                self.client.patch_status("pods", pod.metadata.name, {"status": {"conditions": conditions}},
                                         pod.metadata.namespace)
            except errors.NotFound:
                continue
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")

    def _reconcile_taints(self, node: Node, state: str, now: float) -> float | None:
        """Make the node's taints ours; returns when to look again if a NoExecute taint had to
        wait for the eviction rate limit, else None."""
        current = [taint.to_dict() for taint in node.spec.taints or []]
        wanted = wanted_taints(node, state)
        held_back = None
        no_execute_held = any(taint.get("key") in MANAGED_TAINTS and taint.get("effect") == "NoExecute"
                              for taint in current)
        if not no_execute_held and any(effect == "NoExecute" for _, effect in wanted):
            if not self.no_execute_tainter.try_accept(self.clock.monotonic()):
                wanted = [(key, effect) for key, effect in wanted if effect != "NoExecute"]
                held_back = self.no_execute_tainter.wait(self.clock.monotonic()) + 0.01
                log.info("node %s: its NoExecute taint waits %.1fs for the eviction rate limit (%g nodes/s)",
                         node.metadata.name, held_back, self.eviction_rate)
        merged = merged_taints(current, wanted, format_time(now))
        if merged != current:
            self.client.patch("nodes", node.metadata.name or "", {
                "metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": merged or None}})
        return held_back

