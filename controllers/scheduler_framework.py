"""What the scheduler's plugins work on: pods and nodes as kube-scheduler's framework sees them.

kube-scheduler keeps a cache of every node with the pods bound to it (`NodeInfo`: the pods, what
they request, which of them carry affinity), takes a snapshot of it for each scheduling cycle and
hands it to its plugins, which answer per node with a `Status` (Success, Unschedulable when
preemption might help, UnschedulableAndUnresolvable when it cannot) and a score. This module
holds those shapes, the resource arithmetic, and `SchedulerCache`: the pods holding resources
on each node, kept current from pod events, with our own not-yet-seen bindings counted at once
("assumed", as kube-scheduler does), so a burst of pods neither piles up on one node nor
overcommits it, and a cycle costs O(nodes + pods with affinity), not a walk of every pod.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from minikube_py.api.core import Node, Pod
from minikube_py.api.placement import NO_SCHEDULE, TAINT_NOT_READY, TAINT_UNREACHABLE, Taint
from minikube_py.api.pod_requests import ResourceAmounts, amounts_of, container_requests, pod_requests, resource_amount
from controllers.common import is_pod_active

TERMINAL_PHASES = ("Succeeded", "Failed")
# Status codes (k/k pkg/scheduler/framework/interface.go).
SUCCESS = "Success"
UNSCHEDULABLE = "Unschedulable"
UNRESOLVABLE = "UnschedulableAndUnresolvable"
MAX_NODE_SCORE = 100
__all__ = ["ResourceAmounts", "container_requests", "pod_requests", "resource_amount"]


@dataclass(frozen=True)
class Status:
    """One plugin's verdict on one node; `reasons` are kube-scheduler's texts."""

    code: str = SUCCESS
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS


FIT = Status()


def unschedulable(*reasons: str) -> Status:
    return Status(UNSCHEDULABLE, reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(UNRESOLVABLE, reasons)


def node_allocatable(node: Node) -> ResourceAmounts:
    """The node's `status.allocatable`; a node that reports none has room for nothing."""
    return amounts_of(node.status.allocatable)


def node_taints(node: Node) -> list[Taint]:
    """The node's taints, with the condition taints the node lifecycle controller keeps
    (TaintNodesByCondition: a node whose Ready condition is False is `not-ready`, Unknown or
    missing `unreachable`) added when the controller has not written them yet, so a node that is
    not Ready takes no new pods either way."""
    taints = list(node.spec.taints or [])
    ready = node.status.condition("Ready")
    if ready is None or ready.status != "True":
        key = TAINT_NOT_READY if ready is not None and ready.status == "False" else TAINT_UNREACHABLE
        if ready is None:
            key = TAINT_NOT_READY
        if not any(taint.key == key and taint.effect == NO_SCHEDULE for taint in taints):
            taints.append(Taint(key=key, effect=NO_SCHEDULE))
    return taints


def pod_priority(pod: Pod) -> int:
    return pod.spec.priority or 0


def holds_resources(pod: Pod) -> bool:
    """Bound and not finished: a terminating pod still holds its node's resources until it is gone."""
    return bool(pod.spec.node_name) and pod.status.phase not in TERMINAL_PHASES


def has_pod_affinity(pod: Pod) -> bool:
    affinity = pod.spec.affinity
    return affinity is not None and (affinity.pod_affinity is not None or affinity.pod_anti_affinity is not None)


# Pods alike in everything pod affinity and spreading look at: namespace, labels, being deleted,
# and their own pod (anti-)affinity. Counting groups instead of pods keeps a cycle's cost at the
# number of distinct kinds of pods (a few per app), not the number of pods.
GroupKey = tuple[str, tuple[tuple[str, str], ...], bool, str | None]


def group_key(pod: Pod) -> GroupKey:
    affinity = pod.spec.affinity
    # pydantic's own JSON (fields in declaration order) is a quarter of the cost of to_dict + json.dumps.
    own_terms = affinity.model_dump_json(by_alias=True, exclude_none=True) if has_pod_affinity(pod) and affinity else None
    return (pod.metadata.namespace or "default", tuple(sorted((pod.metadata.labels or {}).items())),
            pod.metadata.deletion_timestamp is not None, own_terms)


@dataclass(eq=False)
class PodGroup:
    """One kind of pod on a node (see `group_key`); `pod` is a member, whose spec gives the
    group's affinity terms (compiled once, on first use, by scheduler_plugins)."""

    namespace: str
    labels: dict[str, str]
    terminating: bool
    pod: Pod
    has_affinity: bool = False
    affinity_terms: object = None

    @classmethod
    def of(cls, pod: Pod) -> PodGroup:
        return cls(pod.metadata.namespace or "default", dict(pod.metadata.labels or {}),
                   pod.metadata.deletion_timestamp is not None, pod, has_pod_affinity(pod))


@dataclass
class PlacedPod:
    """A pod holding resources on a node, with what the plugins need of it precomputed."""

    pod: Pod
    node_name: str
    requests: ResourceAmounts
    score_requests: ResourceAmounts
    group_key: GroupKey


# A node's pod groups and how many pods each has.
Groups = dict[GroupKey, tuple[PodGroup, int]]


def count_in(groups: Groups, placed: PlacedPod, sign: int) -> None:
    group, count = groups.get(placed.group_key) or (PodGroup.of(placed.pod), 0)
    if count + sign > 0:
        groups[placed.group_key] = (group, count + sign)
    else:
        groups.pop(placed.group_key, None)


@dataclass
class NodeInfo:
    """One node and the pods holding resources there (kube-scheduler's NodeInfo)."""

    node: Node
    pods: list[PlacedPod] = field(default_factory=list)
    requested: ResourceAmounts = field(default_factory=dict)
    score_requested: ResourceAmounts = field(default_factory=dict)
    allocatable: ResourceAmounts = field(default_factory=dict)
    taints: list[Taint] = field(default_factory=list)
    groups: Groups = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.metadata.name or ""

    @property
    def labels(self) -> dict[str, str]:
        return self.node.metadata.labels or {}

    def add(self, placed: PlacedPod, sign: int = 1) -> None:
        if sign > 0:
            self.pods.append(placed)
        else:
            self.pods = [other for other in self.pods if other.pod.metadata.uid != placed.pod.metadata.uid]
        for totals, amounts in ((self.requested, placed.requests), (self.score_requested, placed.score_requests)):
            for resource, amount in amounts.items():
                totals[resource] = totals.get(resource, 0) + sign * amount
        count_in(self.groups, placed, sign)

    def without(self, uids: set[str]) -> NodeInfo:
        """A copy without the given pods (preemption's "what if these were gone")."""
        copy = NodeInfo(self.node, allocatable=self.allocatable, taints=self.taints,
                        requested=dict(self.requested), score_requested=dict(self.score_requested),
                        groups=dict(self.groups))
        copy.pods = list(self.pods)
        for placed in self.pods:
            if placed.pod.metadata.uid in uids:
                copy.add(placed, sign=-1)
        return copy

    def with_pod(self, placed: PlacedPod) -> NodeInfo:
        copy = self.without(set())
        copy.add(placed)
        return copy


def place(pod: Pod, node_name: str) -> PlacedPod:
    return PlacedPod(pod, node_name, pod_requests(pod), pod_requests(pod, non_zero=True), group_key(pod))


class SchedulerCache:
    """kube-scheduler's cache, cut down to what its plugins need: per node, the pods holding
    resources there, kept current from pod events. Our own bindings count at once ("assumed")
    until the watch shows them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Per node, a number bumped on every change of its pods, and the NodeInfo the last
        # snapshot made of it at that number: a snapshot copies only the nodes that changed
        # since (kube-scheduler's UpdateSnapshot), one node per binding in a burst.
        self._generations: dict[str, int] = {}
        self._snapshots: dict[str, tuple[int, Node, NodeInfo]] = {}
        self._placed: dict[str, PlacedPod] = {}  # pod uid -> where it is and what it holds
        self._assumed: set[str] = set()  # uids we bound that the watch still shows unbound
        self._by_node: dict[str, dict[str, PlacedPod]] = {}
        self._totals: dict[str, tuple[ResourceAmounts, ResourceAmounts]] = {}  # node -> requests, for scores
        self._groups: dict[str, Groups] = {}
        # Pods the scheduler nominated for a node after preempting there: uid -> (node, pod).
        self._nominated: dict[str, tuple[str, Pod]] = {}

    def observe(self, pod: Pod) -> None:
        """The pod as the watch shows it now."""
        uid = pod.metadata.uid or ""
        with self._lock:
            if holds_resources(pod):
                self._assumed.discard(uid)
                self._nominated.pop(uid, None)
                self._place(uid, pod.spec.node_name or "", pod)
            elif uid in self._assumed and not pod.spec.node_name and is_pod_active(pod):
                return  # bound by us a moment ago; the watch has not caught up
            else:
                self._assumed.discard(uid)
                self._unplace(uid)
                if not is_pod_active(pod):
                    self._nominated.pop(uid, None)

    def forget(self, pod: Pod) -> None:
        uid = pod.metadata.uid or ""
        with self._lock:
            self._assumed.discard(uid)
            self._nominated.pop(uid, None)
            self._unplace(uid)

    def assume(self, pod: Pod, node_name: str, placed: PlacedPod | None = None) -> None:
        """Count our binding of `pod` at once; `placed` is its PlacedPod when the caller has it."""
        uid = pod.metadata.uid or ""
        with self._lock:
            self._assumed.add(uid)
            self._nominated.pop(uid, None)
            self._place(uid, node_name, pod, placed)

    def nominate(self, pod: Pod, node_name: str | None) -> None:
        uid = pod.metadata.uid or ""
        with self._lock:
            if node_name:
                self._nominated[uid] = (node_name, pod)
            else:
                self._nominated.pop(uid, None)

    def nominated_for(self, node_name: str, than: Pod) -> list[Pod]:
        """Pods nominated to `node_name` that matter to `than`: those of at least its priority,
        whose room a lower or equal pod must not take (RunFilterPluginsWithNominatedPods)."""
        with self._lock:
            return [pod for uid, (node, pod) in self._nominated.items()
                    if node == node_name and uid != than.metadata.uid and pod_priority(pod) >= pod_priority(than)]

    def snapshot(self, nodes: list[Node]) -> list[NodeInfo]:
        """A NodeInfo per node, copied out so a cycle sees one consistent state."""
        infos = []
        with self._lock:
            for node in nodes:
                name = node.metadata.name or ""
                generation = self._generations.get(name, 0)
                kept = self._snapshots.get(name)
                if kept is not None and kept[0] == generation and kept[1] is node:
                    infos.append(kept[2])
                    continue
                requested, score_requested = self._totals.get(name, ({}, {}))
                if kept is not None and kept[1] is node:
                    allocatable, taints = kept[2].allocatable, kept[2].taints
                else:
                    allocatable, taints = node_allocatable(node), node_taints(node)
                info = NodeInfo(node, list(self._by_node.get(name, {}).values()), dict(requested),
                                dict(score_requested), allocatable, taints, dict(self._groups.get(name, {})))
                self._snapshots[name] = (generation, node, info)
                infos.append(info)
            if len(self._snapshots) > len(nodes):
                names = {node.metadata.name or "" for node in nodes}
                for gone in [name for name in self._snapshots if name not in names]:
                    del self._snapshots[gone]
        return infos

    def _place(self, uid: str, node_name: str, pod: Pod, placed_now: PlacedPod | None = None) -> None:
        placed = self._placed.get(uid)
        if placed is not None and placed.node_name == node_name:
            if placed.pod is pod:
                return
            key = group_key(pod)
            if key == placed.group_key:
                placed.pod = pod
                return
        self._unplace(uid)  # new, moved, or its labels, affinity or deletion changed
        placed = placed_now or place(pod, node_name)
        self._placed[uid] = placed
        self._by_node.setdefault(node_name, {})[uid] = placed
        self._count(placed, 1)

    def _unplace(self, uid: str) -> None:
        placed = self._placed.pop(uid, None)
        if placed is not None:
            self._by_node.get(placed.node_name, {}).pop(uid, None)
            self._count(placed, -1)

    def _count(self, placed: PlacedPod, sign: int) -> None:
        self._generations[placed.node_name] = self._generations.get(placed.node_name, 0) + 1
        totals = self._totals.setdefault(placed.node_name, ({}, {}))
        for total, amounts in zip(totals, (placed.requests, placed.score_requests), strict=True):
            for resource, amount in amounts.items():
                total[resource] = total.get(resource, 0) + sign * amount
        count_in(self._groups.setdefault(placed.node_name, {}), placed, sign)
