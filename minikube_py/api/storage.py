"""Storage kinds: PersistentVolume and PersistentVolumeClaim (`v1`), StorageClass (`storage.k8s.io/v1`).

A claim asks for storage (size, access modes, a class); a volume is a piece of storage; the
PersistentVolume controller binds one to the other, and a provisioner makes a volume for a claim
when its class names one (ours is the local-path provisioner, `agent/localpath.py`). Pods use a
claim through a `persistentVolumeClaim` volume. Field names and defaults are Kubernetes' own
(k/k `pkg/apis/core/v1/defaults.go`, `pkg/apis/storage/v1/defaults.go`); the annotations and
finalizers below are the ones Kubernetes' controllers, scheduler and admission plugins write.
"""

from __future__ import annotations

from pydantic import Field

from minikube_py.api.core import HostPathVolumeSource
from minikube_py.api.meta import LabelSelector, ObjectMeta, ObjectReference, ResourceList, WireModel, WithConditions

# Access modes and their short forms in `get pv|pvc` (ACCESS MODES column).
ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")

# Phases.
PENDING, BOUND, LOST = "Pending", "Bound", "Lost"
AVAILABLE, RELEASED, FAILED = "Available", "Released", "Failed"

# Annotations and finalizers.
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER_ANNOTATION = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER_ANNOTATION = "volume.beta.kubernetes.io/storage-provisioner"
BIND_COMPLETED_ANNOTATION = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER_ANNOTATION = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"
HOSTNAME_LABEL = "kubernetes.io/hostname"


class VolumeNodeSelectorRequirement(WireModel):
    key: str
    operator: str
    values: list[str] | None = None


class VolumeNodeSelectorTerm(WireModel):
    match_expressions: list[VolumeNodeSelectorRequirement] | None = None
    match_fields: list[VolumeNodeSelectorRequirement] | None = None


class VolumeNodeSelector(WireModel):
    node_selector_terms: list[VolumeNodeSelectorTerm]


class VolumeNodeAffinity(WireModel):
    required: VolumeNodeSelector | None = None


class LocalVolumeSource(WireModel):
    path: str
    fs_type: str | None = None


class PersistentVolumeSpec(WireModel):
    capacity: ResourceList | None = None
    access_modes: list[str] | None = None
    claim_ref: ObjectReference | None = None
    persistent_volume_reclaim_policy: str = "Retain"
    storage_class_name: str | None = None
    mount_options: list[str] | None = None
    volume_mode: str = "Filesystem"
    node_affinity: VolumeNodeAffinity | None = None
    host_path: HostPathVolumeSource | None = None
    local: LocalVolumeSource | None = None


class PersistentVolumeStatus(WireModel):
    phase: str | None = None
    message: str | None = None
    reason: str | None = None
    last_phase_transition_time: str | None = None


class PersistentVolume(WireModel):
    api_version: str = "v1"
    kind: str = "PersistentVolume"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PersistentVolumeSpec = Field(default_factory=PersistentVolumeSpec)
    status: PersistentVolumeStatus = Field(default_factory=PersistentVolumeStatus)

    def source_path(self) -> str | None:
        """The host directory holding the volume's data (hostPath or local), None for other sources."""
        if self.spec.host_path is not None:
            return self.spec.host_path.path
        if self.spec.local is not None:
            return self.spec.local.path
        return None


class VolumeResourceRequirements(WireModel):
    limits: ResourceList | None = None
    requests: ResourceList | None = None


class PersistentVolumeClaimSpec(WireModel):
    access_modes: list[str] | None = None
    selector: LabelSelector | None = None
    resources: VolumeResourceRequirements = Field(default_factory=VolumeResourceRequirements)
    volume_name: str | None = None
    storage_class_name: str | None = None
    volume_mode: str = "Filesystem"


class PersistentVolumeClaimCondition(WireModel):
    type: str
    status: str
    last_probe_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class PersistentVolumeClaimStatus(WithConditions, WireModel):
    phase: str | None = None
    access_modes: list[str] | None = None
    capacity: ResourceList | None = None
    conditions: list[PersistentVolumeClaimCondition] | None = None


class PersistentVolumeClaim(WireModel):
    api_version: str = "v1"
    kind: str = "PersistentVolumeClaim"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PersistentVolumeClaimSpec = Field(default_factory=PersistentVolumeClaimSpec)
    status: PersistentVolumeClaimStatus = Field(default_factory=PersistentVolumeClaimStatus)

    def class_name(self) -> str:
        """The claim's class: the beta annotation wins over the field, as in Kubernetes."""
        annotated = (self.metadata.annotations or {}).get(BETA_STORAGE_CLASS_ANNOTATION)
        return annotated if annotated is not None else (self.spec.storage_class_name or "")


class StorageClass(WireModel):
    api_version: str = "storage.k8s.io/v1"
    kind: str = "StorageClass"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    provisioner: str = ""
    parameters: dict[str, str] | None = None
    reclaim_policy: str = "Delete"
    mount_options: list[str] | None = None
    allow_volume_expansion: bool | None = None
    volume_binding_mode: str = "Immediate"

    def is_default(self) -> bool:
        return (self.metadata.annotations or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
