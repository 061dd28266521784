"""The PersistentVolume controller: binds claims to volumes and keeps both phases true.

Follows k/k `pkg/controller/volume/persistentvolume/pv_controller.go` (semantics of syncClaim
and syncVolume). Keys are `claim/<namespace>/<name>` and `volume/<name>`; event handlers only
enqueue. A claim without a volume gets the smallest Available volume of its class that is large
enough, has its access modes and matches its selector; a claim whose class has a provisioner and
no such volume waits for it (`ExternalProvisioning`), and with `WaitForFirstConsumer` only after
the scheduler has picked a node for its first pod (the `volume.kubernetes.io/selected-node`
annotation). Binding writes the volume's `claimRef` first, then the claim's `volumeName` and
`pv.kubernetes.io/bind-completed`, so a crash in between is finished by the next sync. A volume
whose claim is gone becomes `Released` (and with `Delete` its provisioner removes it); a bound
claim whose volume is gone becomes `Lost`.
"""

from __future__ import annotations

import logging
from typing import Any

from minikube_py.api import errors
from minikube_py.api.quantity import parse_quantity
from minikube_py.api.selectors import Selector
from minikube_py.api.storage import (
    AVAILABLE,
    BETA_STORAGE_PROVISIONER_ANNOTATION,
    BIND_COMPLETED_ANNOTATION,
    BOUND,
    BOUND_BY_CONTROLLER_ANNOTATION,
    FAILED,
    LOST,
    PENDING,
    PROVISIONED_BY_ANNOTATION,
    RELEASED,
    SELECTED_NODE_ANNOTATION,
    STORAGE_PROVISIONER_ANNOTATION,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
)
from minikube_py.api.times import format_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

COMPONENT = "persistentvolume-controller"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


def claim_key(namespace: str | None, name: str | None) -> str:
    return f"claim/{namespace}/{name}"


def volume_key(name: str | None) -> str:
    return f"volume/{name}"


def storage_request(claim: PersistentVolumeClaim) -> Any:
    return parse_quantity((claim.spec.resources.requests or {}).get("storage") or "0")


def volume_capacity(volume: PersistentVolume) -> Any:
    return parse_quantity((volume.spec.capacity or {}).get("storage") or "0")


def node_matches_volume(volume: PersistentVolume, node_name: str, node_labels: dict[str, str] | None) -> bool:
    """Whether a node satisfies the volume's required node affinity (terms ORed, expressions ANDed)."""
    required = volume.spec.node_affinity.required if volume.spec.node_affinity is not None else None
    if required is None:
        return True
    labels = dict(node_labels or {})
    for term in required.node_selector_terms:
        if all(_requirement_holds(requirement, labels) for requirement in term.match_expressions or []) and \
                all(_requirement_holds(requirement, {"metadata.name": node_name})
                    for requirement in term.match_fields or []):
            return True
    return False


def _requirement_holds(requirement: Any, labels: dict[str, str]) -> bool:
    value = labels.get(requirement.key)
    values = requirement.values or []
    if requirement.operator == "In":
        return value in values
    if requirement.operator == "NotIn":
        return value not in values
    if requirement.operator == "Exists":
        return requirement.key in labels
    if requirement.operator == "DoesNotExist":
        return requirement.key not in labels
    return False


def is_prebound_to(volume: PersistentVolume, claim: PersistentVolumeClaim) -> bool:
    reference = volume.spec.claim_ref
    return reference is not None and reference.name == claim.metadata.name and \
        reference.namespace == claim.metadata.namespace and reference.uid in (None, "", claim.metadata.uid)


def find_best_match(claim: PersistentVolumeClaim, volumes: list[PersistentVolume],
                    selected_node: tuple[str, dict[str, str]] | None, delayed: bool) -> PersistentVolume | None:
    """The volume to bind `claim` to (`findBestMatchForClaim`): one pre-bound to it, else the
    smallest Available one of its class, volume mode, access modes, size and selector. A claim
    whose binding waits for its consumer only takes a volume reachable from the selected node."""
    wanted = storage_request(claim)
    modes = set(claim.spec.access_modes or [])
    selector = Selector.from_label_selector(claim.spec.selector) if claim.spec.selector is not None else None
    best: PersistentVolume | None = None
    for volume in volumes:
        if volume.metadata.deletion_timestamp is not None:
            continue
        prebound = is_prebound_to(volume, claim)
        if volume.spec.claim_ref is not None and not prebound:
            continue
        if (volume.spec.storage_class_name or "") != claim.class_name() or \
                volume.spec.volume_mode != claim.spec.volume_mode or \
                not modes <= set(volume.spec.access_modes or []) or volume_capacity(volume) < wanted:
            continue
        if selector is not None and not selector.matches(volume.metadata.labels or {}):
            continue
        if delayed:
            if selected_node is None or not node_matches_volume(volume, *selected_node):
                continue
        if prebound:
            return volume
        if best is None or volume_capacity(volume) < volume_capacity(best):
            best = volume
    return best


class PersistentVolumeController(Controller[str]):
    """Binds PersistentVolumeClaims and PersistentVolumes; keys `claim/ns/name`, `volume/name`."""

    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, workers: int = 1):
        # One worker: two claims must not be bound to one volume by racing syncs.
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.recorder = recorder or EventRecorder(client, COMPONENT, self.clock)
        self.claims = self.watch(informers.informer("persistentvolumeclaims"),
                                 on_add=self._claim_changed, on_update=lambda old, new: self._claim_changed(new),
                                 on_delete=self._claim_deleted)
        self.volumes = self.watch(informers.informer("persistentvolumes"),
                                  on_add=self._volume_changed, on_update=lambda old, new: self._volume_changed(new),
                                  on_delete=self._volume_changed)
        self.classes = self.watch(informers.informer("storageclasses"),
                                  on_add=lambda storage_class: self._enqueue_pending_claims(),
                                  on_update=lambda old, new: self._enqueue_pending_claims())
        self.nodes = informers.informer("nodes")

    # -- event handlers -----------------------------------------------------------------------

    def _claim_changed(self, claim: PersistentVolumeClaim) -> None:
        self.enqueue(claim_key(claim.metadata.namespace, claim.metadata.name))
        if claim.spec.volume_name:
            self.enqueue(volume_key(claim.spec.volume_name))

    def _claim_deleted(self, claim: PersistentVolumeClaim) -> None:
        self._claim_changed(claim)
        for volume in self.volumes.list():
            reference = volume.spec.claim_ref
            if reference is not None and reference.uid == claim.metadata.uid:
                self.enqueue(volume_key(volume.metadata.name))

    def _volume_changed(self, volume: PersistentVolume) -> None:
        self.enqueue(volume_key(volume.metadata.name))
        reference = volume.spec.claim_ref
        if reference is not None:
            self.enqueue(claim_key(reference.namespace, reference.name))
        else:
            self._enqueue_pending_claims()

    def _enqueue_pending_claims(self) -> None:
        for claim in self.claims.list():
            if BIND_COMPLETED_ANNOTATION not in (claim.metadata.annotations or {}):
                self.enqueue(claim_key(claim.metadata.namespace, claim.metadata.name))

    # -- sync ---------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        kind, _, rest = key.partition("/")
        if kind == "claim":
            claim = self.claims.get(rest)
            if claim is not None:
                self._sync_claim(claim)
        else:
            volume = self.volumes.get(rest)
            if volume is not None:
                self._sync_volume(volume)
        return None

    def _sync_claim(self, claim: PersistentVolumeClaim) -> None:
        if BIND_COMPLETED_ANNOTATION not in (claim.metadata.annotations or {}):
            self._sync_unbound_claim(claim)
            return
        if not claim.spec.volume_name:
            self._lose(claim, "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            return
        volume = self.volumes.get(claim.spec.volume_name)
        if volume is None:
            self._lose(claim, "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        reference = volume.spec.claim_ref
        if reference is None or reference.uid == claim.metadata.uid or is_prebound_to(volume, claim):
            self._bind(volume, claim)
            return
        if claim.status.phase != LOST:
            self.recorder.event(claim, WARNING, "ClaimMisbound",
                                "Two claims are bound to the same volume, this one is bound incorrectly")
        self._set_claim_phase(claim, LOST)

    def _sync_unbound_claim(self, claim: PersistentVolumeClaim) -> None:
        if claim.metadata.deletion_timestamp is not None:
            return
        if claim.spec.volume_name:
            volume = self.volumes.get(claim.spec.volume_name)
            if volume is not None and (volume.spec.claim_ref is None or is_prebound_to(volume, claim)):
                self._bind(volume, claim)
                return
            if volume is not None:
                self.recorder.event(claim, WARNING, "FailedBinding",
                                    f'volume "{volume.metadata.name}" already bound to a different claim.')
            self._set_claim_phase(claim, PENDING)
            return
        class_name = claim.class_name()
        storage_class: StorageClass | None = self.classes.get(class_name) if class_name else None
        delayed = storage_class is not None and storage_class.volume_binding_mode == WAIT_FOR_FIRST_CONSUMER
        annotations = claim.metadata.annotations or {}
        selected = annotations.get(SELECTED_NODE_ANNOTATION)
        node = self.nodes.get(selected) if selected else None
        selected_node = (selected, (node.metadata.labels if node is not None else None) or {}) if selected else None
        volume = find_best_match(claim, self.volumes.list(), selected_node, delayed)
        if volume is not None:
            self._bind(volume, claim)
            return
        self._set_claim_phase(claim, PENDING)
        if not class_name:
            self.recorder.event(claim, NORMAL, "FailedBinding",
                                "no persistent volumes available for this claim and no storage class is set")
        elif storage_class is None:
            self.recorder.event(claim, WARNING, "ProvisioningFailed",
                                f'storageclass.storage.k8s.io "{class_name}" not found')
        elif delayed and not selected:
            self.recorder.event(claim, NORMAL, "WaitForFirstConsumer",
                                "waiting for first consumer to be created before binding")
        else:
            self._ask_provisioner(claim, storage_class)

    def _ask_provisioner(self, claim: PersistentVolumeClaim, storage_class: StorageClass) -> None:
        provisioner = storage_class.provisioner
        annotations = claim.metadata.annotations or {}
        if annotations.get(STORAGE_PROVISIONER_ANNOTATION) != provisioner:
            self._patch_claim(claim, {"metadata": {"annotations": {
                STORAGE_PROVISIONER_ANNOTATION: provisioner, BETA_STORAGE_PROVISIONER_ANNOTATION: provisioner}}})
        self.recorder.event(claim, NORMAL, "ExternalProvisioning",
                            f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
                            "or manually by the system administrator. If volume creation is delayed, please verify "
                            "that the provisioner is running and correctly registered.")

    def _bind(self, volume: PersistentVolume, claim: PersistentVolumeClaim) -> None:
        """Volume first (claimRef, then phase), claim second (volumeName and annotations, then status)."""
        reference = volume.spec.claim_ref
        if reference is None or reference.uid != claim.metadata.uid:
            patch: dict[str, Any] = {"spec": {"claimRef": {
                "kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": claim.metadata.namespace,
                "name": claim.metadata.name, "uid": claim.metadata.uid,
                "resourceVersion": claim.metadata.resource_version}}}
            if reference is None:
                patch["metadata"] = {"annotations": {BOUND_BY_CONTROLLER_ANNOTATION: "yes"}}
            if not self._patch("persistentvolumes", volume.metadata.name or "", None, patch):
                return
        self._set_volume_phase(volume, BOUND)
        annotations = claim.metadata.annotations or {}
        if claim.spec.volume_name != volume.metadata.name or annotations.get(BIND_COMPLETED_ANNOTATION) != "yes":
            claim_patch: dict[str, Any] = {"spec": {"volumeName": volume.metadata.name},
                                           "metadata": {"annotations": {BIND_COMPLETED_ANNOTATION: "yes"}}}
            if not claim.spec.volume_name:
                claim_patch["metadata"]["annotations"][BOUND_BY_CONTROLLER_ANNOTATION] = "yes"
            if not self._patch_claim(claim, claim_patch):
                return
        status = claim.status
        if status.phase != BOUND or status.capacity != volume.spec.capacity or \
                status.access_modes != volume.spec.access_modes:
            self._patch_status("persistentvolumeclaims", claim.metadata.name or "", claim.metadata.namespace,
                               {"status": {"phase": BOUND, "accessModes": volume.spec.access_modes,
                                           "capacity": volume.spec.capacity}})

    def _lose(self, claim: PersistentVolumeClaim, message: str) -> None:
        if claim.status.phase != LOST:
            self.recorder.event(claim, WARNING, "ClaimLost", message)
        self._set_claim_phase(claim, LOST)

    def _sync_volume(self, volume: PersistentVolume) -> None:
        reference = volume.spec.claim_ref
        if reference is None:
            self._set_volume_phase(volume, AVAILABLE)
            return
        claim = self.claims.get(f"{reference.namespace}/{reference.name}")
        if not reference.uid:
            # Pre-bound by its author to a claim by name: Available until that claim binds.
            self._set_volume_phase(volume, AVAILABLE)
            return
        if claim is None or claim.metadata.uid != reference.uid:
            self._release(volume)
            return
        if claim.spec.volume_name == volume.metadata.name:
            self._set_volume_phase(volume, BOUND)
        elif claim.spec.volume_name and (volume.metadata.annotations or {}).get(BOUND_BY_CONTROLLER_ANNOTATION):
            # The claim went to another volume: ours is free again.
            self._patch("persistentvolumes", volume.metadata.name or "", None, {"spec": {"claimRef": None}})
            self._set_volume_phase(volume, AVAILABLE)

    def _release(self, volume: PersistentVolume) -> None:
        """The claim is gone: Released, then the reclaim policy. Delete is done by the volume's
        provisioner; a volume nobody provisioned cannot be deleted here and is Failed."""
        if volume.status.phase in (RELEASED, FAILED):
            return
        self._set_volume_phase(volume, RELEASED)
        policy = volume.spec.persistent_volume_reclaim_policy
        provisioned = PROVISIONED_BY_ANNOTATION in (volume.metadata.annotations or {})
        if policy == "Delete" and not provisioned:
            message = (f'error getting deleter volume plugin for volume "{volume.metadata.name}": '
                       "no deletable volume plugin matched")
            self.recorder.event(volume, WARNING, "VolumeFailedDelete", message)
            self._set_volume_phase(volume, FAILED, message)
        elif policy == "Recycle":
            message = "No recycler plugin found for the volume!"
            self.recorder.event(volume, WARNING, "VolumeFailedRecycle", message)
            self._set_volume_phase(volume, FAILED, message)

    # -- writes -------------------------------------------------------------------------------

    def _set_claim_phase(self, claim: PersistentVolumeClaim, phase: str) -> None:
        if claim.status.phase != phase:
            self._patch_status("persistentvolumeclaims", claim.metadata.name or "", claim.metadata.namespace,
                               {"status": {"phase": phase}})

    def _set_volume_phase(self, volume: PersistentVolume, phase: str, message: str | None = None) -> None:
        if volume.status.phase == phase and volume.status.message == message:
            return
        status: dict[str, Any] = {"phase": phase, "message": message}
        if volume.status.phase != phase:
            status["lastPhaseTransitionTime"] = format_time(self.clock.now())
        volume.status.phase = phase
        self._patch_status("persistentvolumes", volume.metadata.name or "", None, {"status": status})

    def _patch_claim(self, claim: PersistentVolumeClaim, patch: dict[str, Any]) -> bool:
        return self._patch("persistentvolumeclaims", claim.metadata.name or "", claim.metadata.namespace, patch)

    def _patch(self, resource: str, name: str, namespace: str | None, patch: dict[str, Any]) -> bool:
        try:
            self.client.patch(resource, name, patch, namespace=namespace)
        except errors.NotFound:
            return False
        return True

    def _patch_status(self, resource: str, name: str, namespace: str | None, patch: dict[str, Any]) -> None:
        try:
            self.client.patch_status(resource, name, patch, namespace=namespace)
        except errors.NotFound:
            pass



