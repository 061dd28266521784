"""The scheduler: binds each pod that has no `spec.nodeName` to a node that can run it.

kube-scheduler's default profile over one node or many: pending pods are taken from the
scheduling queue (controllers/scheduler_queue.py: highest priority first, then the earliest
queued), each is filtered against every node (NodeUnschedulable, NodeName, TaintToleration,
NodeAffinity with nodeSelector, NodeResourcesFit, PodTopologySpread, InterPodAffinity:
controllers/scheduler_plugins.py) in a snapshot of the scheduler's cache, the nodes that pass
are scored with the default weights and the best is bound (among nodes tied for the best score,
one at random, as kube-scheduler's selectHost does; `rng` makes it repeatable). Binding goes
through the API's binding call, which sets `spec.nodeName` once and marks the pod
`PodScheduled`; the event `Scheduled` says where it went.

When nothing fits, DefaultPreemption (controllers/scheduler_preemption.py) looks for a node where
deleting lower-priority pods makes room: the pod is nominated there (`status.nominatedNodeName`,
whose room lower pods may not take meanwhile) and the victims are deleted gracefully. Otherwise
the pod gets `PodScheduled=False` with reason `Unschedulable` and kube-scheduler's message
(`0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}.
preemption: 0/3 nodes are available: ...`) with a `FailedScheduling` event, and waits among
the queue's unschedulable pods until a node appears or changes in a way that matters, a pod on a
node ends or goes away, a pod its required affinity or spreading counts lands on a node, or a
claim changes; then it is tried again once its back-off (1 s doubling to 10 s per attempt) is
over. A pod with `schedulingGates` is not considered until they are removed (`SchedulingGated`).
"""

from __future__ import annotations

import logging
import random
import threading

from minikube_py.api import errors
from minikube_py.api.core import Node, Pod
from minikube_py.api.policy import PodDisruptionBudget
from minikube_py.api.selectors import Requirement, Selector
from minikube_py.api.times import format_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, shared_informers, cache_key, split_cache_key
from minikube_py.clock import Clock
from controllers.common import is_pod_active
from controllers.scheduler_framework import (
    NodeInfo,
    PlacedPod,
    SchedulerCache,
    Status,
    group_key,
    holds_resources,
    pod_priority,
    pod_requests,
    unresolvable,
)
from controllers.scheduler_plugins import Cycle, PodAffinityTerms, spread_constraints
from controllers.scheduler_preemption import DisruptionBudgets, fit_error_message, preempt
from controllers.scheduler_queue import SchedulingQueue
from controllers.volumebinding import VolumeBinding

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"
NO_NODES_MESSAGE = "no nodes available to schedule pods"
GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"
# How soon a pod waiting for its claims to be bound is looked at again (a claim event also wakes it).
CLAIM_BINDING_POLL_SECONDS = 1.0
# Total scores closer than this are a tie (float rounding of equal sums).
SCORE_TIE_TOLERANCE = 1e-9

__all__ = ["Scheduler", "pod_requests", "select_host", "unschedulable_message"]


def unschedulable_message(node_count: int, reasons: list[str], preemption: str = "") -> str:
    """`0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.` and, when
    preemption was tried, ` preemption: <its message>.` (kube-scheduler's FitError text, whose
    separator adds a period even after one: `... for incoming pod..`)."""
    if node_count == 0:
        return NO_NODES_MESSAGE
    statuses = {str(index): Status("Unschedulable", (reason,)) for index, reason in enumerate(reasons)}
    message = fit_error_message(node_count, statuses)
    if preemption:
        message += f" preemption: {preemption}."
    return message


def _wanted(pod: Pod) -> tuple[object, ...]:
    # What a pending pod's update must change to be tried again at once: not its status.
    metadata = pod.metadata
    return (pod.spec, metadata.labels, metadata.annotations, metadata.deletion_timestamp)


def _schedulability(node: Node) -> tuple[object, ...]:
    # What a node update must change for pending pods to deserve another try.
    ready = node.status.condition("Ready")
    return (node.spec.unschedulable, ready.status if ready else None, node.metadata.labels, node.status.allocatable,
            [taint.to_dict() for taint in node.spec.taints or []])




class Scheduler(Controller[str]):
    """Binds pending pods to nodes; keys are pod `namespace/name`."""

    # kube-scheduler never gives up on a pod: a failed sync backs off (10 s at most) and retries.
    max_retries = 2**31

    def __init__(
        self,
        client: Client,
        clock: Clock | None = None,
        informers: SharedInformers | None = None,
        recorder: EventRecorder | None = None,
        workers: int = 1,
        rng: random.Random | None = None,
    ):
        # One worker by default: each choice counts the bindings made before it.
        super().__init__(SCHEDULER_NAME, clock, workers)
        self.client = client
        # Picks among the nodes that tie for the best score; tests pass a seeded one.
        self.random = rng or random.Random()
        informers = informers or shared_informers(client)
        self.cache = SchedulerCache()
        # kube-scheduler's queue (controllers/scheduler_queue.py) in place of the plain work queue.
        self.scheduling_queue = SchedulingQueue(self.clock, SCHEDULER_NAME, priority_of=self._priority_of)
        self.queue = self.scheduling_queue
        self.recorder = recorder or EventRecorder(client, SCHEDULER_NAME, self.clock)
        self.pods = self.watch(
            informers.informer("pods"),
            on_add=self._pod_added,
            on_update=self._pod_updated,
            on_delete=self._pod_deleted,
        )
        self.nodes = self.watch(
            informers.informer("nodes"),
            on_add=self._node_added,
            on_update=self._node_updated,
            on_delete=lambda node: self._nodes_changed(),
        )
        # persistentVolumeClaim volumes (controllers/volumebinding.py); a claim binding wakes its pods.
        self.volume_binding = VolumeBinding(client, informers)
        self.watch(self.volume_binding.claims, on_add=lambda claim: self._claims_changed(),
                   on_update=lambda old, new: self._claims_changed())
        # Pods whose claims are being bound for the node chosen for them (keys): a claim event
        # brings them back before their poll does.
        self._awaiting_claims: set[str] = set()
        self._awaiting_claims_lock = threading.Lock()
        self.namespaces = self.watch(informers.informer("namespaces"), on_add=lambda namespace: self._namespaces_changed(),
                                     on_update=lambda old, new: self._namespaces_changed(),
                                     on_delete=lambda namespace: self._namespaces_changed())
        # What every cycle reads of the nodes and namespaces, kept until their informers change:
        # (version it was made at, value); the handlers bump the versions.
        self._nodes_version = self._namespaces_version = 0
        self._sorted_nodes: tuple[int, list[Node]] = (-1, [])
        self._namespace_labels_seen: tuple[int, dict[str, dict[str, str]]] = (-1, {})
        self.budgets = self.watch(informers.informer("poddisruptionbudgets"))
        # Default topology spreading counts the pods of the incoming pod's Services and ReplicaSets.
        self.services = self.watch(informers.informer("services"))
        self.replica_sets = self.watch(informers.informer("replicasets"))

    @staticmethod
    def needs_scheduling(pod: Pod) -> bool:
        return (
            not pod.spec.node_name
            and is_pod_active(pod)
            and (pod.spec.scheduler_name or SCHEDULER_NAME) == SCHEDULER_NAME
        )

    def _priority_of(self, key: str) -> int:
        pod = self.pods.get(key)
        return pod_priority(pod) if pod is not None else 0

    def _pod_added(self, pod: Pod) -> None:
        self.cache.observe(pod)
        if self.needs_scheduling(pod):
            self.enqueue(cache_key(pod))
        elif holds_resources(pod):
            self._assigned_pod_added(pod)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        self.cache.observe(new)
        key = cache_key(new)
        if self.needs_scheduling(new):
            # As kube-scheduler's isPodUpdated: a change of the pod's status alone (our own
            # PodScheduled=False among them) does not make it worth another try.
            if not self.needs_scheduling(old) or _wanted(old) != _wanted(new):
                self.enqueue(key)
            return
        self.scheduling_queue.remove(key)  # bound, finished or being deleted
        if holds_resources(new) and not old.spec.node_name:
            self._assigned_pod_added(new)
        elif holds_resources(old) and not holds_resources(new):
            self.scheduling_queue.move_all()  # its room is free
        elif old.metadata.labels != new.metadata.labels and holds_resources(new):
            self.scheduling_queue.move_all()  # affinity and spreading may see it differently now

    def _pod_deleted(self, pod: Pod) -> None:
        self.cache.forget(pod)
        key = cache_key(pod)
        self.scheduling_queue.remove(key)
        with self._awaiting_claims_lock:
            self._awaiting_claims.discard(key)
        if holds_resources(pod):
            self.scheduling_queue.move_all()

    def _assigned_pod_added(self, pod: Pod) -> None:
        """A pod now runs on a node: the unschedulable pods whose required pod affinity or
        topology spreading counts it may fit now (kube-scheduler's AssignedPodAdded)."""
        self.scheduling_queue.move_all(lambda key: self._counts_pod(key, pod))

    def _counts_pod(self, key: str, assigned: Pod) -> bool:
        pending = self.pods.get(key)
        if pending is None:
            return False
        affinity = pending.spec.affinity
        if affinity is not None and affinity.pod_affinity is not None \
                and affinity.pod_affinity.required_during_scheduling_ignored_during_execution:
            labels = self._namespace_labels()
            if any(term.matches(assigned, labels) for term in PodAffinityTerms.of(pending).required_affinity):
                return True
        if pending.metadata.namespace != assigned.metadata.namespace:
            return False
        return any(constraint.selector.matches(assigned.metadata.labels)
                   for constraint in spread_constraints(pending, None, hard=True))

    def _claims_changed(self) -> None:
        self.scheduling_queue.move_all()
        with self._awaiting_claims_lock:
            awaiting = list(self._awaiting_claims)
        for key in awaiting:
            self.enqueue(key)

    def _nodes_changed(self) -> None:
        self._nodes_version += 1

    def _namespaces_changed(self) -> None:
        self._namespaces_version += 1

    def _node_added(self, node: Node) -> None:
        self._nodes_changed()
        self.scheduling_queue.move_all()

    def _node_updated(self, old: Node, new: Node) -> None:
        self._nodes_changed()
        if _schedulability(old) != _schedulability(new):
            self.scheduling_queue.move_all()

    # -- one scheduling cycle --------------------------------------------------------------------

    def _namespace_labels(self) -> dict[str, dict[str, str]]:
        version = self._namespaces_version
        seen_at, labels = self._namespace_labels_seen
        if seen_at != version:
            labels = {namespace.metadata.name or "": namespace.metadata.labels or {}
                      for namespace in self.namespaces.list()}
            self._namespace_labels_seen = (version, labels)
        return labels

    def _node_list(self) -> list[Node]:
        """The nodes by name, as the informer has them."""
        version = self._nodes_version
        seen_at, nodes = self._sorted_nodes
        if seen_at != version:
            nodes = sorted(self.nodes.list(), key=lambda node: node.metadata.name or "")
            self._sorted_nodes = (version, nodes)
        return nodes

    def _default_spread_selector(self, pod: Pod) -> Selector | None:
        """DefaultSelector: the requirements of every Service and ReplicaSet selecting the pod,
        ANDed; None when nothing selects it."""
        labels = pod.metadata.labels or {}
        requirements: list[Requirement] = []
        namespace = pod.metadata.namespace
        for service in self.services.list(namespace):
            selector = service.spec.selector
            if selector and all(labels.get(key) == value for key, value in selector.items()):
                requirements += Selector.from_label_selector({"matchLabels": selector}).requirements
        for replica_set in self.replica_sets.list(namespace):
            selector = Selector.from_label_selector(replica_set.spec.selector)
            if not selector.is_empty() and selector.matches(labels):
                requirements += selector.requirements
        return Selector(tuple(dict.fromkeys(requirements))) if requirements else None

    def cycle(self, pod: Pod, nodes: list[NodeInfo] | None = None) -> Cycle:
        if nodes is None:
            nodes = self.cache.snapshot(self._node_list())
        needs_default_spread = not pod.spec.topology_spread_constraints
        return Cycle(pod, nodes, self._namespace_labels(),
                     self._default_spread_selector(pod) if needs_default_spread else None)

    def _filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        """The plugins' filters, then VolumeBinding's (controllers/volumebinding.py): a node the
        pod's bound volumes cannot reach is out, and preemption cannot change that."""
        status = cycle.filter_node(node, self.cache.nominated_for(node.name, cycle.pod))
        if status.ok:
            conflict = self.volume_binding.filter(cycle.pod, node.node)
            if conflict is not None:
                return unresolvable(conflict)
        return status

    def _filter_without(self, cycle: Cycle, changed: NodeInfo) -> Status:
        """The filters on a node with some pods taken away (preemption's what-if): a cycle of
        its own, so affinity and spreading see the node as it would be."""
        nodes = [changed if node.name == changed.name else node for node in cycle.nodes]
        what_if = Cycle(cycle.pod, nodes, cycle.namespace_labels, cycle.default_spread_selector)
        return what_if.filter_node(changed, self.cache.nominated_for(changed.name, cycle.pod))

    def sync(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or not self.needs_scheduling(pod):
            return None
        if pod.spec.scheduling_gates:
            self._mark_unschedulable(pod, "SchedulingGated", GATED_MESSAGE, event=False)
            return None
        volume_problem = self.volume_binding.pre_filter(pod)
        if volume_problem is not None:
            self.scheduling_queue.add_unschedulable(key)
            self._mark_unschedulable(pod, "Unschedulable", volume_problem)
            return None
        cycle = self.cycle(pod)
        statuses = {node.name: self._filter(cycle, node) for node in cycle.nodes}
        feasible = [node for node in cycle.nodes if statuses[node.name].ok]
        if not feasible:
            self._unschedulable_pod(key, cycle, statuses)
            return None
        chosen = feasible[0] if len(feasible) == 1 else select_host(feasible, cycle.score_nodes(feasible), self.random)
        namespace, name = split_cache_key(key)
        if not self.volume_binding.pre_bind(pod, chosen.name):
            with self._awaiting_claims_lock:
                self._awaiting_claims.add(key)
            return CLAIM_BINDING_POLL_SECONDS  # its claims are being bound for this node: look again
        with self._awaiting_claims_lock:
            self._awaiting_claims.discard(key)
        try:
            self.client.bind(namespace, name, chosen.name)
        except (errors.NotFound, errors.Conflict) as error:
            # Deleted, being deleted, or bound by someone else meanwhile: nothing left to do.
            log.info("%s: not binding pod %s: %s", self.name, key, error)
            return None
        self.scheduling_queue.remove(key)
        self.cache.assume(pod, chosen.name, PlacedPod(pod, chosen.name, cycle.requests, cycle.score_requests,
                                                     group_key(pod)))
        self.recorder.event(pod, NORMAL, "Scheduled", f"Successfully assigned {key} to {chosen.name}")
        return None

    def _unschedulable_pod(self, key: str, cycle: Cycle, statuses: dict[str, Status]) -> None:
        self.scheduling_queue.add_unschedulable(key)
        pod = cycle.pod
        if not cycle.nodes:
            self._mark_unschedulable(pod, "Unschedulable", NO_NODES_MESSAGE)
            return
        message = fit_error_message(len(cycle.nodes), statuses)
        nominated = next((node for node in cycle.nodes if node.name == pod.status.nominated_node_name), None)
        result = preempt(cycle, statuses, DisruptionBudgets(self._budgets_list()),
                         lambda node: self._filter_without(cycle, node), nominated)
        if result.candidate is None:
            if pod.status.nominated_node_name and result.message != "not eligible due to a terminating pod on the nominated node.":
                self._nominate(pod, None)
            self._mark_unschedulable(pod, "Unschedulable", f"{message} preemption: {result.message}.")
            return
        node_name = result.candidate.node.name
        self._nominate(pod, node_name)
        for victim in result.candidate.victims:
            self._evict_victim(victim, pod, node_name)
        self._mark_unschedulable(pod, "Unschedulable", message)

    def _budgets_list(self) -> list[PodDisruptionBudget]:
        return list(self.budgets.list())

    def _nominate(self, pod: Pod, node_name: str | None) -> None:
        self.cache.nominate(pod, node_name)
        if (pod.status.nominated_node_name or None) == node_name:
            return
        try:
            self.client.patch_status("pods", pod.metadata.name or "", {"status": {"nominatedNodeName": node_name}},
                                     namespace=pod.metadata.namespace)
        except errors.NotFound:
            pass

    def _evict_victim(self, victim: Pod, preemptor: Pod, node_name: str) -> None:
        """Mark the victim DisruptionTarget and delete it with its grace period (prepareCandidate)."""
        name, namespace = victim.metadata.name or "", victim.metadata.namespace
        condition = {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                     "lastTransitionTime": format_time(self.clock.now()), "reason": "PreemptionByScheduler",
                     "message": f"{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"}
        others = [c.to_dict() for c in victim.status.conditions or [] if c.type != "DisruptionTarget"]
        try:
            self.client.patch_status("pods", name, {"status": {"conditions": [*others, condition]}}, namespace=namespace)
            self.client.delete("pods", name, namespace=namespace)
        except errors.NotFound:
            return
        self.recorder.event(victim, NORMAL, "Preempted",
                            f"Preempted by pod {preemptor.metadata.uid} on node {node_name}")

    def _mark_unschedulable(self, pod: Pod, reason: str, message: str, event: bool = True) -> None:
        current = pod.status.condition("PodScheduled")
        if current is not None and (current.status, current.reason, current.message) == ("False", reason, message):
            return
        transition = current.last_transition_time if current is not None and current.status == "False" else None
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": transition or format_time(self.clock.now()),
            "reason": reason,
            "message": message,
        }
        others = [c.to_dict() for c in pod.status.conditions or [] if c.type != "PodScheduled"]
        try:
            self.client.patch_status(
                "pods", pod.metadata.name or "", {"status": {"conditions": [*others, condition]}},
                namespace=pod.metadata.namespace,
            )
        except errors.NotFound:
            return
        if event:
            self.recorder.event(pod, WARNING, "FailedScheduling", message)


def select_host(nodes: list[NodeInfo], scores: dict[str, float], rng: random.Random) -> NodeInfo:
    """The node with the highest score; among nodes that share it, each equally likely
    (kube-scheduler's selectHost: reservoir sampling over the nodes in order, so one pass
    and one random draw per tied node). Scores closer than SCORE_TIE_TOLERANCE tie: ours are
    floats where kube-scheduler's are integers."""
    chosen, best, tied = nodes[0], scores[nodes[0].name], 1
    for node in nodes[1:]:
        score = scores[node.name]
        if score > best + SCORE_TIE_TOLERANCE:
            chosen, best, tied = node, score, 1
        elif score >= best - SCORE_TIE_TOLERANCE:
            tied += 1
            if rng.randrange(tied) == 0:
                chosen = node
    return chosen
