"""The scheduler: binds each pod that has no `spec.nodeName` to a node that can run it.

A much smaller kube-scheduler for a cluster of one node (or a few): a node fits when it is Ready,
not cordoned (`spec.unschedulable`), its labels match the pod's `nodeSelector`, and the pod fits
in what the node's `status.allocatable` has left (the NodeResourcesFit filter): one more pod
within `pods`, and the pod's requests for cpu, memory, ephemeral-storage and extended resources
(`example.com/gpu`) within what the pods already there request. Among the nodes that fit, the
one running the fewest pods wins (then the name, so the choice is stable).
Binding goes through the API's binding call, which sets `spec.nodeName` once and marks the pod
`PodScheduled`; the event `Scheduled` says where it went. When nothing fits the pod gets
`PodScheduled=False` with reason `Unschedulable` and kube-scheduler's message
(`0/1 nodes are available: 1 Insufficient cpu.`, `0/1 nodes are available: 1 Too many pods.`)
with a `FailedScheduling` event, and is tried again whenever a node appears or changes in a way
that matters, or a pod on a node ends or goes away.
"""

from __future__ import annotations

import logging
import math
import threading

from minikube_py.api import errors
from minikube_py.api.core import Container, Node, Pod
from minikube_py.api.quantity import parse_quantity
from minikube_py.api.times import format_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, shared_informers, cache_key, split_cache_key
from minikube_py.clock import Clock
from controllers.common import is_pod_active
from controllers.volumebinding import VolumeBinding

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"

# kube-scheduler's filter failure texts (k/k pkg/scheduler/framework/plugins/...), in the order
# its filters run; a node is reported under the first filter it fails.
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_NOT_READY = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
REASON_UNREACHABLE = "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
REASON_SELECTOR = "node(s) didn't match Pod's node affinity/selector"
NO_NODES_MESSAGE = "no nodes available to schedule pods"
# NodeResourcesFit's reasons (k/k pkg/scheduler/framework/plugins/noderesources/fit.go).
REASON_TOO_MANY_PODS = "Too many pods"
REASON_INSUFFICIENT = "Insufficient {resource}"
TERMINAL_PHASES = ("Succeeded", "Failed")

# Amounts of resources as the scheduler adds them up: cpu in millicores, the rest in whole units.
ResourceAmounts = dict[str, int]


def resource_amount(resource: str, text: str) -> int:
    value = parse_quantity(text)
    return math.ceil(value * 1000) if resource == "cpu" else math.ceil(value)


def container_requests(container: Container) -> ResourceAmounts:
    """A container's requests; a resource with only a limit requests its limit (as the API
    server's defaulting does in Kubernetes)."""
    resources = container.resources
    if resources is None:
        return {}
    wanted = {**(resources.limits or {}), **(resources.requests or {})}
    amounts: ResourceAmounts = {}
    for resource, text in wanted.items():
        try:
            amounts[resource] = resource_amount(resource, text)
        except ValueError:
            continue  # validation refuses bad quantities; an old stored object counts as 0
    return amounts


def pod_requests(pod: Pod) -> ResourceAmounts:
    """What a pod needs of a node (`resourcehelper.PodRequests`): its app containers' requests
    added up, and at least the largest init container's, since init containers run one at a time.
    E.g. app containers asking 100m + 200m cpu and an init container asking 500m need 500m."""
    total: ResourceAmounts = {}
    for container in pod.spec.containers:
        for resource, amount in container_requests(container).items():
            total[resource] = total.get(resource, 0) + amount
    for container in pod.spec.init_containers or []:
        for resource, amount in container_requests(container).items():
            total[resource] = max(total.get(resource, 0), amount)
    return total


def node_allocatable(node: Node) -> ResourceAmounts:
    """The node's `status.allocatable`; a node that reports none has room for nothing."""
    amounts: ResourceAmounts = {}
    for resource, text in (node.status.allocatable or {}).items():
        try:
            amounts[resource] = resource_amount(resource, text)
        except ValueError:
            continue
    return amounts


class NodeUsage:
    """The pods bound to one node that still hold resources, and what they request together."""

    def __init__(self) -> None:
        self.pods = 0
        self.requested: ResourceAmounts = {}

    def add(self, requests: ResourceAmounts, sign: int = 1) -> None:
        self.pods += sign
        for resource, amount in requests.items():
            self.requested[resource] = self.requested.get(resource, 0) + sign * amount

    def copy(self) -> NodeUsage:
        usage = NodeUsage()
        usage.pods, usage.requested = self.pods, dict(self.requested)
        return usage


def insufficient_resources(allocatable: ResourceAmounts, usage: NodeUsage, requests: ResourceAmounts) -> list[str]:
    """NodeResourcesFit's verdict, as its reasons: the pod count first, then each requested
    resource that the node's allocatable cannot cover beside what its pods already request."""
    reasons = []
    if usage.pods + 1 > allocatable.get("pods", 0):
        reasons.append(REASON_TOO_MANY_PODS)
    for resource, amount in sorted(requests.items()):
        if amount > 0 and resource != "pods" and amount > allocatable.get(resource, 0) - usage.requested.get(resource, 0):
            reasons.append(REASON_INSUFFICIENT.format(resource=resource))
    return reasons


def node_misfit_reason(node: Node, pod: Pod) -> str | None:
    """Why `pod` cannot go to `node`, in kube-scheduler's words; None when it fits."""
    if node.spec.unschedulable:
        return REASON_UNSCHEDULABLE
    ready = node.status.condition("Ready")
    if ready is None or ready.status == "False":
        return REASON_NOT_READY
    if ready.status != "True":
        return REASON_UNREACHABLE
    labels = node.metadata.labels or {}
    if any(labels.get(key) != value for key, value in (pod.spec.node_selector or {}).items()):
        return REASON_SELECTOR
    return None


def unschedulable_message(node_count: int, reasons: list[str]) -> str:
    """`0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match ...`."""
    if node_count == 0:
        return NO_NODES_MESSAGE
    histogram: dict[str, int] = {}
    for reason in reasons:
        histogram[reason] = histogram.get(reason, 0) + 1
    counted = sorted(f"{count} {reason}" for reason, count in histogram.items())
    return f"0/{node_count} nodes are available: {', '.join(counted)}."


def _schedulability(node: Node) -> tuple[object, ...]:
    # What a node update must change for pending pods to deserve another try.
    ready = node.status.condition("Ready")
    return node.spec.unschedulable, ready.status if ready else None, node.metadata.labels, node.status.allocatable


def holds_resources(pod: Pod) -> bool:
    """Bound and not finished: a terminating pod still holds its node's resources until it is gone."""
    return bool(pod.spec.node_name) and pod.status.phase not in TERMINAL_PHASES


class PlacedPods:
    """kube-scheduler's cache, cut down to what its filters need: per node, the pods holding
    resources there and what they request, kept current from pod events so that a sync does not
    walk every pod. Our own bindings count at once ("assumed", as kube-scheduler does) until the
    watch shows them, so a burst of pods neither piles up on one node nor overcommits it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._placed: dict[str, tuple[str, ResourceAmounts]] = {}  # pod uid -> (node, requests)
        self._assumed: set[str] = set()  # uids we bound that the watch still shows unbound
        self._usage: dict[str, NodeUsage] = {}

    def observe(self, pod: Pod) -> None:
        """The pod as the watch shows it now."""
        uid = pod.metadata.uid or ""
        with self._lock:
            if holds_resources(pod):
                self._assumed.discard(uid)
                self._place(uid, pod.spec.node_name or "", pod)
            elif uid in self._assumed and not pod.spec.node_name and is_pod_active(pod):
                return  # bound by us a moment ago; the watch has not caught up
            else:
                self._assumed.discard(uid)
                self._unplace(uid)

    def forget(self, pod: Pod) -> None:
        uid = pod.metadata.uid or ""
        with self._lock:
            self._assumed.discard(uid)
            self._unplace(uid)

    def assume(self, pod: Pod, node_name: str) -> None:
        uid = pod.metadata.uid or ""
        with self._lock:
            self._assumed.add(uid)
            self._place(uid, node_name, pod)

    def usage(self, node_name: str) -> NodeUsage:
        with self._lock:
            return self._usage.get(node_name, NodeUsage()).copy()

    def _place(self, uid: str, node_name: str, pod: Pod) -> None:
        placed = self._placed.get(uid)
        if placed is not None and placed[0] == node_name:
            return
        self._unplace(uid)
        requests = pod_requests(pod)
        self._placed[uid] = (node_name, requests)
        self._usage.setdefault(node_name, NodeUsage()).add(requests)

    def _unplace(self, uid: str) -> None:
        placed = self._placed.pop(uid, None)
        if placed is not None:
            self._usage[placed[0]].add(placed[1], sign=-1)


# How soon a pod waiting for its claims to be bound is looked at again (a claim event also wakes it).
CLAIM_BINDING_POLL_SECONDS = 1.0


class Scheduler(Controller[str]):
    """Binds pending pods to nodes; keys are pod `namespace/name`."""

    def __init__(
        self,
        client: Client,
        clock: Clock | None = None,
        informers: SharedInformers | None = None,
        recorder: EventRecorder | None = None,
        workers: int = 1,
    ):
        # One worker by default: the "fewest pods" choice counts the bindings made before it.
        super().__init__(SCHEDULER_NAME, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.placed = PlacedPods()
        # Pods found not to fit, tried again when a node's pod ends or goes (keys).
        self._unschedulable: set[str] = set()
        self._unschedulable_lock = threading.Lock()
        self.recorder = recorder or EventRecorder(client, SCHEDULER_NAME, self.clock)
        self.pods = self.watch(
            informers.informer("pods"),
            on_add=self._pod_added,
            on_update=self._pod_updated,
            on_delete=self._pod_deleted,
        )
        self.nodes = self.watch(
            informers.informer("nodes"),
            on_add=lambda node: self._enqueue_pending_pods(),
            on_update=self._node_updated,
        )
        # persistentVolumeClaim volumes (controllers/volumebinding.py); a claim binding wakes its pods.
        self.volume_binding = VolumeBinding(client, informers)
        self.watch(self.volume_binding.claims, on_add=lambda claim: self._enqueue_pending_pods(),
                   on_update=lambda old, new: self._enqueue_pending_pods())

    @staticmethod
    def needs_scheduling(pod: Pod) -> bool:
        return (
            not pod.spec.node_name
            and is_pod_active(pod)
            and (pod.spec.scheduler_name or SCHEDULER_NAME) == SCHEDULER_NAME
        )

    def _pod_changed(self, pod: Pod) -> None:
        if self.needs_scheduling(pod):
            self.enqueue(cache_key(pod))

    def _pod_added(self, pod: Pod) -> None:
        self.placed.observe(pod)
        self._pod_changed(pod)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        self.placed.observe(new)
        self._pod_changed(new)
        if holds_resources(old) and not holds_resources(new):
            self._retry_unschedulable()

    def _pod_deleted(self, pod: Pod) -> None:
        self.placed.forget(pod)
        with self._unschedulable_lock:
            self._unschedulable.discard(cache_key(pod))
        if holds_resources(pod):
            self._retry_unschedulable()

    def _retry_unschedulable(self) -> None:
        """Room was freed on a node: the pods that did not fit get another try."""
        with self._unschedulable_lock:
            waiting = list(self._unschedulable)
        for key in waiting:
            self.enqueue(key)

    def _node_updated(self, old: Node, new: Node) -> None:
        if _schedulability(old) != _schedulability(new):
            self._enqueue_pending_pods()

    def _enqueue_pending_pods(self) -> None:
        for pod in self.pods.list():
            self._pod_changed(pod)

    def sync(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or not self.needs_scheduling(pod):
            return None
        volume_problem = self.volume_binding.pre_filter(pod)
        if volume_problem is not None:
            with self._unschedulable_lock:
                self._unschedulable.add(key)
            self._mark_unschedulable(pod, volume_problem)
            return None
        nodes = sorted(self.nodes.list(), key=lambda node: node.metadata.name)
        usage = {node.metadata.name or "": self.placed.usage(node.metadata.name or "") for node in nodes}
        requests = pod_requests(pod)
        fitting, reasons = [], []
        for node in nodes:
            misfit = node_misfit_reason(node, pod) or self.volume_binding.filter(pod, node)
            node_reasons = [misfit] if misfit else insufficient_resources(
                node_allocatable(node), usage[node.metadata.name or ""], requests)
            if node_reasons:
                reasons += node_reasons
            else:
                fitting.append(node)
        if not fitting:
            with self._unschedulable_lock:
                self._unschedulable.add(key)
            self._mark_unschedulable(pod, unschedulable_message(len(nodes), reasons))
            return None
        chosen = min(fitting, key=lambda node: (usage[node.metadata.name or ""].pods, node.metadata.name or ""))
        node_name = chosen.metadata.name or ""
        namespace, name = split_cache_key(key)
        with self._unschedulable_lock:
            self._unschedulable.discard(key)
        if not self.volume_binding.pre_bind(pod, node_name):
            return CLAIM_BINDING_POLL_SECONDS  # its claims are being bound for this node: look again
        try:
            self.client.bind(namespace, name, node_name)
        except (errors.NotFound, errors.Conflict) as error:
            # Deleted, being deleted, or bound by someone else meanwhile: nothing left to do.
            log.info("%s: not binding pod %s: %s", self.name, key, error)
            return None
        self.placed.assume(pod, node_name)
        self.recorder.event(pod, NORMAL, "Scheduled", f"Successfully assigned {key} to {node_name}")
        return None

    def _mark_unschedulable(self, pod: Pod, message: str) -> None:
        current = pod.status.condition("PodScheduled")
        if current is not None and (current.status, current.reason, current.message) == ("False", "Unschedulable", message):
            return
        transition = current.last_transition_time if current is not None and current.status == "False" else None
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": transition or format_time(self.clock.now()),
            "reason": "Unschedulable",
            "message": message,
        }
        others = [c.to_dict() for c in pod.status.conditions or [] if c.type != "PodScheduled"]
        self.client.patch_status(
            "pods", pod.metadata.name or "", {"status": {"conditions": [*others, condition]}},
            namespace=pod.metadata.namespace,
        )
        self.recorder.event(pod, WARNING, "FailedScheduling", message)
