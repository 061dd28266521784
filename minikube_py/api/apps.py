"""`apps/v1` kinds: ReplicaSet, Deployment, StatefulSet, DaemonSet and ControllerRevision.

Defaults follow k/k `pkg/apis/apps/v1/defaults.go`: one replica, RollingUpdate with 25%/25%,
ten old ReplicaSets kept, a 600 s progress deadline. The rolling-update parameters are filled
in by `api.defaults.set_defaults` because they only apply to the RollingUpdate strategy (a
Recreate Deployment must not carry them).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from minikube_py.api.core import PodTemplateSpec
from minikube_py.api.meta import Int32, Int64, IntOrString, LabelSelector, ObjectMeta, WireModel, WithConditions
from minikube_py.api.storage import PersistentVolumeClaim


class ReplicaSetCondition(WireModel):
    type: str
    status: str
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class ReplicaSetSpec(WireModel):
    replicas: Int32 = 1
    min_ready_seconds: Int32 = 0
    selector: LabelSelector | None = None
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)


class ReplicaSetStatus(WithConditions, WireModel):
    replicas: Int32 | None = None
    fully_labeled_replicas: Int32 | None = None
    ready_replicas: Int32 | None = None
    available_replicas: Int32 | None = None
    observed_generation: Int64 | None = None
    conditions: list[ReplicaSetCondition] | None = None


class ReplicaSet(WireModel):
    api_version: str = "apps/v1"
    kind: str = "ReplicaSet"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ReplicaSetSpec = Field(default_factory=ReplicaSetSpec)
    status: ReplicaSetStatus = Field(default_factory=ReplicaSetStatus)


class RollingUpdateDeployment(WireModel):
    max_unavailable: IntOrString | None = None
    max_surge: IntOrString | None = None


class DeploymentStrategy(WireModel):
    type: str = "RollingUpdate"
    rolling_update: RollingUpdateDeployment | None = None


class DeploymentCondition(WireModel):
    type: str
    status: str
    last_update_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class DeploymentSpec(WireModel):
    replicas: Int32 = 1
    selector: LabelSelector | None = None
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    min_ready_seconds: Int32 = 0
    revision_history_limit: Int32 = 10
    paused: bool = False
    progress_deadline_seconds: Int32 = 600


class DeploymentStatus(WithConditions, WireModel):
    observed_generation: Int64 | None = None
    replicas: Int32 | None = None
    updated_replicas: Int32 | None = None
    ready_replicas: Int32 | None = None
    available_replicas: Int32 | None = None
    unavailable_replicas: Int32 | None = None
    conditions: list[DeploymentCondition] | None = None
    collision_count: Int32 | None = None


class Deployment(WireModel):
    api_version: str = "apps/v1"
    kind: str = "Deployment"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DeploymentSpec = Field(default_factory=DeploymentSpec)
    status: DeploymentStatus = Field(default_factory=DeploymentStatus)


class ControllerRevision(WireModel):
    """An immutable snapshot of a controller's state (`data`, here a pod template patch) at one
    `revision`; StatefulSets and DaemonSets keep their history in these (`client/history.py`)."""

    api_version: str = "apps/v1"
    kind: str = "ControllerRevision"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    data: dict[str, Any] | None = None
    revision: Int64 = 0


class RollingUpdateStatefulSetStrategy(WireModel):
    partition: Int32 | None = None
    max_unavailable: IntOrString | None = None


class StatefulSetUpdateStrategy(WireModel):
    type: str = "RollingUpdate"
    rolling_update: RollingUpdateStatefulSetStrategy | None = None


class StatefulSetPersistentVolumeClaimRetentionPolicy(WireModel):
    when_deleted: str = "Retain"
    when_scaled: str = "Retain"


class StatefulSetOrdinals(WireModel):
    start: Int32 = 0


class StatefulSetSpec(WireModel):
    replicas: Int32 = 1
    selector: LabelSelector | None = None
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    volume_claim_templates: list[PersistentVolumeClaim] | None = None
    service_name: str | None = None
    pod_management_policy: str = "OrderedReady"
    update_strategy: StatefulSetUpdateStrategy = Field(default_factory=StatefulSetUpdateStrategy)
    revision_history_limit: Int32 = 10
    min_ready_seconds: Int32 = 0
    persistent_volume_claim_retention_policy: StatefulSetPersistentVolumeClaimRetentionPolicy = Field(
        default_factory=StatefulSetPersistentVolumeClaimRetentionPolicy)
    ordinals: StatefulSetOrdinals | None = None


class StatefulSetCondition(WireModel):
    type: str
    status: str
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class StatefulSetStatus(WithConditions, WireModel):
    observed_generation: Int64 | None = None
    replicas: Int32 = 0
    ready_replicas: Int32 | None = None
    current_replicas: Int32 | None = None
    updated_replicas: Int32 | None = None
    current_revision: str | None = None
    update_revision: str | None = None
    collision_count: Int32 | None = None
    conditions: list[StatefulSetCondition] | None = None
    available_replicas: Int32 = 0


class StatefulSet(WireModel):
    """Pods with stable names (`web-0`, `web-1`, ...), hostnames and claims, made and updated in order."""

    api_version: str = "apps/v1"
    kind: str = "StatefulSet"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: StatefulSetSpec = Field(default_factory=StatefulSetSpec)
    status: StatefulSetStatus = Field(default_factory=StatefulSetStatus)


class RollingUpdateDaemonSet(WireModel):
    max_unavailable: IntOrString | None = None
    max_surge: IntOrString | None = None


class DaemonSetUpdateStrategy(WireModel):
    type: str = "RollingUpdate"
    rolling_update: RollingUpdateDaemonSet | None = None


class DaemonSetSpec(WireModel):
    selector: LabelSelector | None = None
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    update_strategy: DaemonSetUpdateStrategy = Field(default_factory=DaemonSetUpdateStrategy)
    min_ready_seconds: Int32 = 0
    revision_history_limit: Int32 = 10


class DaemonSetCondition(WireModel):
    type: str
    status: str
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class DaemonSetStatus(WithConditions, WireModel):
    # The first four are always written (Kubernetes' JSON does not omit them when 0).
    current_number_scheduled: Int32 = 0
    number_misscheduled: Int32 = 0
    desired_number_scheduled: Int32 = 0
    number_ready: Int32 = 0
    observed_generation: Int64 | None = None
    updated_number_scheduled: Int32 | None = None
    number_available: Int32 | None = None
    number_unavailable: Int32 | None = None
    collision_count: Int32 | None = None
    conditions: list[DaemonSetCondition] | None = None


class DaemonSet(WireModel):
    """One pod on every eligible node (`controllers/daemonset.py`)."""

    api_version: str = "apps/v1"
    kind: str = "DaemonSet"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DaemonSetSpec = Field(default_factory=DaemonSetSpec)
    status: DaemonSetStatus = Field(default_factory=DaemonSetStatus)
