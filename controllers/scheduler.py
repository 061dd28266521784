"""The scheduler: binds each pod that has no `spec.nodeName` to a node that can run it.

A much smaller kube-scheduler for a cluster of one node (or a few): a node fits when it is Ready,
not cordoned (`spec.unschedulable`) and its labels match the pod's `nodeSelector`; among the
nodes that fit, the one running the fewest pods wins (then the name, so the choice is stable).
Binding goes through the API's binding call, which sets `spec.nodeName` once and marks the pod
`PodScheduled`; the event `Scheduled` says where it went. When nothing fits the pod gets
`PodScheduled=False` with reason `Unschedulable` and kube-scheduler's message
(`0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.`), and is tried
again whenever a node appears or changes in a way that matters.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from minikube_py.api import errors
from minikube_py.api.times import format_time
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, shared_informers, object_key, split_key
from minikube_py.clock import Clock
from controllers.common import is_pod_active

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"

# kube-scheduler's filter failure texts (k/k pkg/scheduler/framework/plugins/...), in the order
# its filters run; a node is reported under the first filter it fails.
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_NOT_READY = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
REASON_UNREACHABLE = "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
REASON_SELECTOR = "node(s) didn't match Pod's node affinity/selector"
NO_NODES_MESSAGE = "no nodes available to schedule pods"


def node_misfit_reason(node: Any, pod: Any) -> str | None:
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


def _schedulability(node: Any) -> tuple:
    # What a node update must change for pending pods to deserve another try.
    ready = node.status.condition("Ready")
    return node.spec.unschedulable, ready.status if ready else None, node.metadata.labels


class Scheduler(Controller):
    """Binds pending pods to nodes; keys are pod `namespace/name`."""

    def __init__(
        self,
        client: Any,
        clock: Clock | None = None,
        informers: SharedInformers | None = None,
        recorder: EventRecorder | None = None,
        workers: int = 1,
    ):
        # One worker by default: the "fewest pods" choice counts the bindings made before it.
        super().__init__(SCHEDULER_NAME, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        # Pods we bound that the cache still shows unbound: key -> node name.
        self._assumed: dict[str, str] = {}
        self._assumed_lock = threading.Lock()
        self.recorder = recorder or EventRecorder(client, SCHEDULER_NAME, self.clock)
        self.pods = self.watch(
            informers.informer("pods"),
            on_add=self._pod_changed,
            on_update=lambda old, new: self._pod_changed(new),
        )
        self.nodes = self.watch(
            informers.informer("nodes"),
            on_add=lambda node: self._enqueue_pending_pods(),
            on_update=self._node_updated,
        )

    @staticmethod
    def needs_scheduling(pod: Any) -> bool:
        return (
            not pod.spec.node_name
            and is_pod_active(pod)
            and (pod.spec.scheduler_name or SCHEDULER_NAME) == SCHEDULER_NAME
        )

    def _pod_changed(self, pod: Any) -> None:
        if self.needs_scheduling(pod):
            self.enqueue(object_key(pod))

    def _node_updated(self, old: Any, new: Any) -> None:
        if _schedulability(old) != _schedulability(new):
            self._enqueue_pending_pods()

    def _enqueue_pending_pods(self) -> None:
        for pod in self.pods.list():
            self._pod_changed(pod)

    def sync(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or not self.needs_scheduling(pod):
            return None
        nodes = sorted(self.nodes.list(), key=lambda node: node.metadata.name)
        fitting, reasons = [], []
        for node in nodes:
            reason = node_misfit_reason(node, pod)
            if reason is None:
                fitting.append(node)
            else:
                reasons.append(reason)
        if not fitting:
            self._mark_unschedulable(pod, unschedulable_message(len(nodes), reasons))
            return None
        pods_per_node = self._pods_per_node()
        chosen = min(fitting, key=lambda node: (pods_per_node.get(node.metadata.name, 0), node.metadata.name))
        node_name = chosen.metadata.name
        namespace, name = split_key(key)
        try:
            self.client.bind(namespace, name, node_name)
        except (errors.NotFound, errors.Conflict) as error:
            # Deleted, being deleted, or bound by someone else meanwhile: nothing left to do.
            log.info("%s: not binding pod %s: %s", self.name, key, error)
            return None
        with self._assumed_lock:
            self._assumed[key] = node_name
        self.recorder.event(pod, NORMAL, "Scheduled", f"Successfully assigned {key} to {node_name}")
        return None

    def _pods_per_node(self) -> dict[str, int]:
        """Active pods per node, counting our own bindings the cache has not shown yet (as
        kube-scheduler "assumes" them), so a burst of pods spreads instead of piling up."""
        counts: dict[str, int] = {}
        with self._assumed_lock:
            for key, node_name in list(self._assumed.items()):
                cached = self.pods.get(key)
                if cached is None or cached.spec.node_name:
                    del self._assumed[key]  # the cache has caught up (or the pod is gone)
                else:
                    counts[node_name] = counts.get(node_name, 0) + 1
        for pod in self.pods.list():
            if pod.spec.node_name and is_pod_active(pod):
                counts[pod.spec.node_name] = counts.get(pod.spec.node_name, 0) + 1
        return counts

    def _mark_unschedulable(self, pod: Any, message: str) -> None:
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
            "pods", pod.metadata.name, {"status": {"conditions": [*others, condition]}},
            namespace=pod.metadata.namespace,
        )
        self.recorder.event(pod, WARNING, "FailedScheduling", message)
