"""The scheduler's volume binding, as kube-scheduler's VolumeBinding plugin does it.

A pod with `persistentVolumeClaim` volumes is only placed where its claims can be used:
- PreFilter: every claim must exist and not be being deleted (`persistentvolumeclaim "data" not
  found`), and an unbound claim must wait for its consumer (class with `WaitForFirstConsumer`);
  an unbound claim of any other class (or of a class that does not exist) makes the pod
  unschedulable with `pod has unbound immediate PersistentVolumeClaims`.
- Filter: a node must satisfy the node affinity of every bound claim's volume
  (`node(s) had volume node affinity conflict`).
- PreBind: once a node is chosen, each unbound claim gets the
  `volume.kubernetes.io/selected-node` annotation, which lets the PersistentVolume controller and
  the provisioner act; the pod is bound to the node only when all its claims are bound.
"""

from __future__ import annotations

from minikube_py.api import errors
from minikube_py.api.core import Node, Pod
from minikube_py.api.storage import SELECTED_NODE_ANNOTATION, PersistentVolumeClaim
from minikube_py.client.api import Client
from minikube_py.client.informer import Informer, SharedInformers
from controllers.persistentvolume import WAIT_FOR_FIRST_CONSUMER, node_matches_volume

VOLUME_NODE_AFFINITY_CONFLICT = "node(s) had volume node affinity conflict"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"


def claim_names(pod: Pod) -> list[str]:
    return [volume.persistent_volume_claim.claim_name for volume in pod.spec.volumes or []
            if volume.persistent_volume_claim is not None]


def is_bound(claim: PersistentVolumeClaim) -> bool:
    return bool(claim.spec.volume_name) and claim.status.phase == "Bound"


class VolumeBinding:
    """The three steps above over the scheduler's caches."""

    def __init__(self, client: Client, informers: SharedInformers):
        self.client = client
        self.claims: Informer = informers.informer("persistentvolumeclaims")
        self.volumes: Informer = informers.informer("persistentvolumes")
        self.classes: Informer = informers.informer("storageclasses")

    def _claims(self, pod: Pod) -> list[tuple[str, PersistentVolumeClaim | None]]:
        return [(name, self.claims.get(f"{pod.metadata.namespace}/{name}")) for name in claim_names(pod)]

    def pre_filter(self, pod: Pod) -> str | None:
        """Why no node can take the pod because of its claims, or None."""
        for name, claim in self._claims(pod):
            if claim is None:
                return f'persistentvolumeclaim "{name}" not found'
            if claim.metadata.deletion_timestamp is not None:
                return f'persistentvolumeclaim "{name}" is being deleted'
            if not is_bound(claim):
                storage_class = self.classes.get(claim.class_name()) if claim.class_name() else None
                if storage_class is None or storage_class.volume_binding_mode != WAIT_FOR_FIRST_CONSUMER:
                    return UNBOUND_IMMEDIATE
        return None

    def filter(self, pod: Pod, node: Node) -> str | None:
        for _, claim in self._claims(pod):
            if claim is None or not is_bound(claim):
                continue
            volume = self.volumes.get(claim.spec.volume_name or "")
            if volume is not None and not node_matches_volume(volume, node.metadata.name or "", node.metadata.labels):
                return VOLUME_NODE_AFFINITY_CONFLICT
        return None

    def pre_bind(self, pod: Pod, node_name: str) -> bool:
        """Ask for the unbound claims to be provisioned or bound for `node_name`; True once all are bound."""
        ready = True
        for name, claim in self._claims(pod):
            if claim is None or is_bound(claim):
                continue
            ready = False
            if (claim.metadata.annotations or {}).get(SELECTED_NODE_ANNOTATION) != node_name:
                try:
                    self.client.patch("persistentvolumeclaims", name,
                                      {"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: node_name}}},
                                      namespace=pod.metadata.namespace)
                except errors.NotFound:
                    pass
        return ready
