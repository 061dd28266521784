"""The taint eviction controller: pods leave a node that carries a NoExecute taint they do not
tolerate, at once, or after their `tolerationSeconds` when they tolerate it for a while.

As k/k `pkg/controller/tainteviction` does, for each pod bound to a node with NoExecute taints:
- a taint no toleration of the pod matches: the pod is deleted now;
- every taint tolerated, some only for a while: the pod is deleted once the shortest of those
  `tolerationSeconds` has passed since the taint appeared (its `timeAdded`, else when this
  controller first saw it), unless the taint goes or the pod gains a toleration first;
- every taint tolerated for ever: nothing happens.
Before deleting, the pod gets the condition `DisruptionTarget` (reason `DeletionByTaintManager`)
and the event `TaintManagerEviction` ("Marking for deletion Pod NS/NAME"). The node lifecycle
controller puts `node.kubernetes.io/not-ready` and `unreachable` NoExecute taints on nodes that
stop reporting, and pods tolerate those 300 s by default (DefaultTolerationSeconds admission), so
pods leave a lost node five minutes later. Keys are pods, so each pod's deadline waits in the
work queue by itself and a sync is level-triggered: it re-reads the node and the pod.
"""

from __future__ import annotations

import threading

from minikube_py.api import errors
from minikube_py.api.core import Node, Pod
from minikube_py.api.placement import NO_EXECUTE, Taint, Toleration
from minikube_py.api.times import format_time, parse_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, EventRecorder
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers, split_cache_key
from minikube_py.clock import Clock

COMPONENT = "taint-eviction-controller"
TERMINAL_PHASES = ("Succeeded", "Failed")


def eviction_delay(tolerations: list[Toleration] | None, taints: list[Taint]) -> float | None:
    """Seconds after the taints appeared that the pod must go: 0 for an untolerated taint, the
    shortest `tolerationSeconds` of the matching tolerations (a negative one counts as 0), None
    when it may stay for ever (getMinTolerationTime)."""
    shortest: float | None = None
    for taint in taints:
        matching = [toleration for toleration in tolerations or [] if toleration.tolerates(taint)]
        if not matching:
            return 0.0
        for toleration in matching:
            if toleration.toleration_seconds is None:
                continue
            seconds = max(0.0, float(toleration.toleration_seconds))
            shortest = seconds if shortest is None else min(shortest, seconds)
    return shortest


class TaintEvictionController(Controller[str]):
    """Deletes pods from NoExecute-tainted nodes; keys are pod `namespace/name`."""

    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, workers: int = 1):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.recorder = recorder or EventRecorder(client, COMPONENT, self.clock)
        # When each (node, taint key) was first seen without a timeAdded.
        self._first_seen: dict[tuple[str, str], float] = {}
        self._first_seen_lock = threading.Lock()
        self.pods = self.watch(informers.informer("pods"), on_add=self._pod_changed,
                               on_update=lambda old, new: self._pod_changed(new))
        self.nodes = self.watch(informers.informer("nodes"), on_add=self._node_changed, on_update=self._node_updated)

    def _pod_changed(self, pod: Pod) -> None:
        if pod.spec.node_name and pod.metadata.deletion_timestamp is None:
            self.enqueue(cache_key(pod))

    def _node_changed(self, node: Node) -> None:
        if not self._no_execute(node):
            return
        for pod in self.pods.list():
            if pod.spec.node_name == node.metadata.name:
                self._pod_changed(pod)

    def _node_updated(self, old: Node, new: Node) -> None:
        if self._no_execute(old) != self._no_execute(new):
            for pod in self.pods.list():
                if pod.spec.node_name == new.metadata.name:
                    self._pod_changed(pod)

    @staticmethod
    def _no_execute(node: Node) -> list[Taint]:
        return [taint for taint in node.spec.taints or [] if taint.effect == NO_EXECUTE]

    def _since(self, node_name: str, taints: list[Taint]) -> float:
        """When the latest of these taints appeared: the deadline counts from there."""
        now = self.clock.now()
        latest = 0.0
        with self._first_seen_lock:
            for taint in taints:
                added: float | None = None
                if taint.time_added:
                    try:
                        added = parse_time(taint.time_added)
                    except ValueError:
                        added = None
                if added is None:
                    added = self._first_seen.setdefault((node_name, taint.key), now)
                latest = max(latest, added)
        return latest

    def sync(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or not pod.spec.node_name or pod.metadata.deletion_timestamp is not None \
                or pod.status.phase in TERMINAL_PHASES:
            return None
        node = self.nodes.get(pod.spec.node_name)
        if node is None:
            return None
        taints = self._no_execute(node)
        if not taints:
            with self._first_seen_lock:
                for first_key in [k for k in self._first_seen if k[0] == pod.spec.node_name]:
                    del self._first_seen[first_key]
            return None
        delay = eviction_delay(pod.spec.tolerations, taints)
        if delay is None:
            return None
        remaining = self._since(pod.spec.node_name, taints) + delay - self.clock.now()
        if remaining > 0:
            return remaining
        self._evict(pod, key)
        return None

    def _evict(self, pod: Pod, key: str) -> None:
        namespace, name = split_cache_key(key)
        condition = {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                     "lastTransitionTime": format_time(self.clock.now()), "reason": "DeletionByTaintManager",
                     "message": "Taint manager: deleting due to NoExecute taint"}
        others = [c.to_dict() for c in pod.status.conditions or [] if c.type != "DisruptionTarget"]
        self.recorder.event(pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {key}")
        try:
            self.client.patch_status("pods", name, {"status": {"conditions": [*others, condition]}}, namespace=namespace)
            self.client.delete("pods", name, namespace=namespace, preconditions={"uid": pod.metadata.uid})
        except (errors.NotFound, errors.Conflict):
            return
