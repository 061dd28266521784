"""What a Deployment's ReplicaSets say about its rollout, read alike by the controller and by kubectl.

The revision annotations, the pod-template-hash label, template equality that ignores it, the
new ReplicaSet among the old ones, and reading a condition. The Deployment controller
(`controllers/deployment/util.py`) builds on these; the CLI's rollout and describe commands use
them client-side, as kubectl vendors the same `pkg/util/deployment` helpers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from minikube_py.api.core import PodTemplateSpec
from minikube_py.api.apps import Deployment, ReplicaSet
from minikube_py.api.times import parse_time

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"  # apps.DefaultDeploymentUniqueLabelKey

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
LAST_APPLIED_CONFIG_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"

# Deployment annotations that are never copied to a ReplicaSet (nor back on rollback).
ANNOTATIONS_TO_SKIP = frozenset({
    LAST_APPLIED_CONFIG_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    ROLLBACK_TO_ANNOTATION,
})

# The condition kubectl's `rollout status` reads, and the reason that ends a rollout in failure.
PROGRESSING = "Progressing"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"


def semantic_form(value: Any) -> Any:
    """A wire value with empty maps and lists dropped: Kubernetes' semantic equality treats
    a missing map and an empty one alike, and so must hashing and comparing templates."""
    if isinstance(value, dict):
        cleaned = {key: semantic_form(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [semantic_form(item) for item in value]
    return value


def template_without_hash(template: PodTemplateSpec) -> dict[str, Any]:
    """The template's wire form, semantically normalised, without the pod-template-hash label."""
    wire = template.to_dict()
    labels = wire.get("metadata", {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return semantic_form(wire)


def without_hash_label(template: PodTemplateSpec) -> PodTemplateSpec:
    """A copy of a ReplicaSet's pod template fit for a Deployment: the pod-template-hash label removed."""
    copy = template.model_copy(deep=True)
    labels = {key: value for key, value in (copy.metadata.labels or {}).items() if key != POD_TEMPLATE_HASH_LABEL}
    copy.metadata.labels = labels or None
    return copy


def equal_ignore_hash(first: PodTemplateSpec, second: PodTemplateSpec) -> bool:
    """Two pod templates are the same apart from the pod-template-hash label (`EqualIgnoreHash`)."""
    return template_without_hash(first) == template_without_hash(second)


def creation_order(obj: Any) -> tuple[float, str]:
    """The sort key of `by_creation`: creation time, then name."""
    created = obj.metadata.creation_timestamp
    return (parse_time(created) if created else 0.0, obj.metadata.name or "")


def by_creation(replica_sets: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    """Oldest first; the name breaks ties (`ReplicaSetsByCreationTimestamp`)."""
    return sorted(replica_sets, key=creation_order)


def find_new_replica_set(deployment: Deployment, replica_sets: Iterable[ReplicaSet]) -> ReplicaSet | None:
    """The oldest ReplicaSet whose template equals the Deployment's, ignoring the hash label."""
    for replica_set in by_creation(replica_sets):
        if equal_ignore_hash(replica_set.spec.template, deployment.spec.template):
            return replica_set
    return None


def revision_of(obj: Any) -> int:
    """The revision annotation as a number; 0 when absent. Raises ValueError when not a number."""
    text = (obj.metadata.annotations or {}).get(REVISION_ANNOTATION)
    if text is None:
        return 0
    return int(text)


def get_condition(status: Any, condition_type: str) -> Any | None:
    for condition in status.conditions or []:
        if condition.type == condition_type:
            return condition
    return None
