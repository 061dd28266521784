"""The pod garbage collector: removes pods nobody else will (k/k `pkg/controller/podgc`).

Two rules of kube-controller-manager's PodGC:

- Orphans. A pod bound to a node that does not exist has no agent to stop it or report it, so it
  would stay Running forever and could only be removed with `--force`. When a pod names a
  node the cache does not hold (or its node is deleted), the node is put in quarantine for
  `quarantine_seconds` (Kubernetes' 40 s: the node may simply not have registered yet); if an
  API read then still finds no such node, each of its pods is marked `Failed` with the condition
  `DisruptionTarget=True` (reason `DeletionByPodGC`, message `PodGC: node no longer exists`)
  and deleted with grace 0.
- The terminated-pod threshold (`--terminated-pod-gc-threshold`, default 12500, 0 turns it off).
  When more pods than that are Succeeded or Failed, the oldest are deleted until the threshold
  is met again: evicted pods first, then by creationTimestamp, then by name.

Kubernetes runs both every 20 s over the whole cache; here they are level-triggered keys
(`node/<name>` for an orphan check, `terminated-pods` for the threshold) that pod and node
events enqueue, so an idle cluster does no work.
"""

from __future__ import annotations

import logging

from minikube_py.api import errors
from minikube_py.api.core import Node, Pod
from minikube_py.api.times import format_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

COMPONENT = "pod-garbage-collector"
# k/k podgc gc_controller.go: how long a missing node may take to show up before its pods go.
QUARANTINE_SECONDS = 40.0
# kube-controller-manager's --terminated-pod-gc-threshold default.
DEFAULT_TERMINATED_POD_THRESHOLD = 12500
ORPHAN_KEY_PREFIX = "node/"
TERMINATED_KEY = "terminated-pods"
TERMINAL_PHASES = ("Succeeded", "Failed")

# The condition PodGC adds to an orphaned pod before deleting it (k/k gcOrphaned).
DISRUPTION_TARGET = "DisruptionTarget"
ORPHAN_REASON = "DeletionByPodGC"
ORPHAN_MESSAGE = "PodGC: node no longer exists"


def is_terminated(pod: Pod) -> bool:
    """Succeeded or Failed (`isPodTerminated`: any phase but Pending, Running, Unknown)."""
    return pod.status.phase in TERMINAL_PHASES


def is_evicted(pod: Pod) -> bool:
    return pod.status.phase == "Failed" and pod.status.reason == "Evicted"


def deletion_order(pod: Pod) -> tuple[bool, str, str]:
    """Evicted pods first, then the oldest, then by name (`byEvictionAndCreationTimestamp`)."""
    return (not is_evicted(pod), pod.metadata.creation_timestamp or "", pod.metadata.name or "")


class PodGarbageCollector(Controller[str]):
    """Deletes orphaned pods and terminated pods beyond the threshold."""

    def __init__(
        self,
        client: Client,
        clock: Clock | None = None,
        informers: SharedInformers | None = None,
        terminated_pod_threshold: int = DEFAULT_TERMINATED_POD_THRESHOLD,
        quarantine_seconds: float = QUARANTINE_SECONDS,
    ) -> None:
        super().__init__(COMPONENT, clock, workers=1)
        self.client = client
        self.terminated_pod_threshold = terminated_pod_threshold
        self.quarantine_seconds = quarantine_seconds
        informers = informers or shared_informers(client)
        self.pods = self.watch(informers.informer("pods"), on_add=self._pod_changed,
                               on_update=lambda old, new: self._pod_changed(new))
        self.nodes = self.watch(informers.informer("nodes"), on_delete=self._node_deleted)

    # -- event handlers -------------------------------------------------------------------------

    def _pod_changed(self, pod: Pod) -> None:
        node_name = pod.spec.node_name
        if node_name and self.nodes.get(node_name) is None:
            self.enqueue_after(ORPHAN_KEY_PREFIX + node_name, self.quarantine_seconds)
        if self.terminated_pod_threshold > 0 and is_terminated(pod):
            self.enqueue(TERMINATED_KEY)

    def _node_deleted(self, node: Node) -> None:
        self.enqueue_after(ORPHAN_KEY_PREFIX + (node.metadata.name or ""), self.quarantine_seconds)

    # -- sync -----------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        if key == TERMINATED_KEY:
            self._collect_terminated()
        elif key.startswith(ORPHAN_KEY_PREFIX):
            self._collect_orphans(key[len(ORPHAN_KEY_PREFIX):])
        return None

    def _collect_terminated(self) -> None:
        if self.terminated_pod_threshold <= 0:
            return
        pods: list[Pod] = [pod for pod in self.pods.list() if is_terminated(pod)]
        excess = len(pods) - self.terminated_pod_threshold
        if excess <= 0:
            return
        log.info("%s: %d terminated pods, threshold %d: deleting the %d oldest",
                 self.name, len(pods), self.terminated_pod_threshold, excess)
        for pod in sorted(pods, key=deletion_order)[:excess]:
            self._fail_and_delete(pod, with_condition=False)

    def _collect_orphans(self, node_name: str) -> None:
        if not node_name or self.nodes.get(node_name) is not None or self._node_exists(node_name):
            return
        orphans: list[Pod] = [pod for pod in self.pods.list() if pod.spec.node_name == node_name]
        for pod in orphans:
            log.info("%s: pod %s/%s is bound to node %r, which no longer exists: deleting it",
                     self.name, pod.metadata.namespace, pod.metadata.name, node_name)
            self._fail_and_delete(pod, with_condition=True)

    def _node_exists(self, node_name: str) -> bool:
        """Ask the API itself: the cache may not have seen a node that just registered."""
        try:
            self.client.get("nodes", node_name)
        except errors.NotFound:
            return False
        return True

    def _fail_and_delete(self, pod: Pod, with_condition: bool) -> None:
        """Kubernetes' markFailedAndDeletePod: a pod not yet terminal is first marked Failed (its
        node will never report it), then the object is removed with grace 0. The status write is
        conditional on the version we read and the delete on the pod's uid, so a pod changed or
        recreated meanwhile is looked at again (Conflict: retried) instead of overwritten."""
        namespace, name, uid = pod.metadata.namespace, pod.metadata.name or "", pod.metadata.uid
        try:
            if not is_terminated(pod):
                conditions = [condition.to_dict() for condition in pod.status.conditions or []
                              if condition.type != DISRUPTION_TARGET]
                if with_condition:
                    conditions.append({
                        "type": DISRUPTION_TARGET, "status": "True", "reason": ORPHAN_REASON,
                        "message": ORPHAN_MESSAGE, "lastTransitionTime": format_time(self.clock.now()),
                    })
                self.client.patch_status("pods", name, {"metadata": {"resourceVersion": pod.metadata.resource_version},
                                                        "status": {"phase": "Failed", "conditions": conditions}},
                                         namespace=namespace)
            self.client.delete("pods", name, namespace=namespace, grace_period_seconds=0,
                               preconditions={"uid": uid})
        except errors.NotFound:
            pass  # gone already
