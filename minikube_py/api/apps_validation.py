"""Defaulting and validation of the `apps/v1` kinds that carry their own rules: StatefulSet and
ControllerRevision.

Follows k/k `pkg/apis/apps/v1/defaults.go` (SetDefaults_StatefulSet) and
`pkg/apis/apps/validation/validation.go` (ValidateStatefulSet, ValidateControllerRevision and
their updates) with the API server's wording. `api.resources` attaches these functions to the kinds.
"""

from __future__ import annotations

from minikube_py.api.apps import ControllerRevision, RollingUpdateStatefulSetStrategy, StatefulSet
from minikube_py.api.core import Volume
from minikube_py.api.defaults import default_pod_spec
from minikube_py.api.names import dns1123_label_errors, dns1123_subdomain_errors
from minikube_py.api.storage_validation import validate_claim_template_spec
from minikube_py.api.validation import Problems, percent_or_int, validate_metadata, validate_replicated_template


def default_namespace(obj: ControllerRevision) -> None:
    if not obj.metadata.namespace:
        obj.metadata.namespace = "default"


def validate_controller_revision(revision: ControllerRevision) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, revision.metadata, True, dns1123_subdomain_errors)
    if revision.data is None:
        problems.required("data", "data is mandatory")
    problems.non_negative("revision", revision.revision)
    return problems.items


def validate_controller_revision_update(new: ControllerRevision, old: ControllerRevision) -> list[tuple[str, str]]:
    """Only `revision` (and metadata) may change: the snapshot itself is immutable."""
    problems = Problems()
    if new.data != old.data:
        problems.invalid("data", new.data, "field is immutable")
    return problems.items


RETENTION_POLICIES = ("Retain", "Delete")
STATEFULSET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                       "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def default_stateful_set(stateful_set: StatefulSet) -> None:
    """SetDefaults_StatefulSet: the namespace, the pod template's defaults, partition 0 for RollingUpdate."""
    if not stateful_set.metadata.namespace:
        stateful_set.metadata.namespace = "default"
    default_pod_spec(stateful_set.spec.template.spec)
    strategy = stateful_set.spec.update_strategy
    if strategy.type == "RollingUpdate":
        if strategy.rolling_update is None:
            strategy.rolling_update = RollingUpdateStatefulSetStrategy()
        if strategy.rolling_update.partition is None:
            strategy.rolling_update.partition = 0


def validate_stateful_set(stateful_set: StatefulSet) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, stateful_set.metadata, True, dns1123_subdomain_errors)
    spec = stateful_set.spec
    problems.one_of("spec.podManagementPolicy", spec.pod_management_policy, ("OrderedReady", "Parallel"))
    strategy = spec.update_strategy
    if strategy.type not in ("RollingUpdate", "OnDelete"):
        problems.unsupported("spec.updateStrategy.type", strategy.type, ("OnDelete", "RollingUpdate"))
    elif strategy.type == "OnDelete" and strategy.rolling_update is not None:
        problems.invalid("spec.updateStrategy.rollingUpdate", strategy.rolling_update,
                         "only allowed for updateStrategy 'RollingUpdate'")
    elif strategy.rolling_update is not None:
        problems.non_negative("spec.updateStrategy.rollingUpdate.partition", strategy.rolling_update.partition)
        unavailable = strategy.rolling_update.max_unavailable
        if unavailable is not None:
            number = percent_or_int(problems, "spec.updateStrategy.rollingUpdate.maxUnavailable", unavailable)
            if number == 0:
                problems.invalid("spec.updateStrategy.rollingUpdate.maxUnavailable", unavailable,
                                 "must be greater than 0")
            elif isinstance(unavailable, str) and number is not None and number > 100:
                problems.invalid("spec.updateStrategy.rollingUpdate.maxUnavailable", unavailable,
                                 "must not be greater than 100%")
    problems.non_negative("spec.replicas", spec.replicas)
    problems.non_negative("spec.minReadySeconds", spec.min_ready_seconds)
    problems.non_negative("spec.revisionHistoryLimit", spec.revision_history_limit)
    if spec.ordinals is not None:
        problems.non_negative("spec.ordinals.start", spec.ordinals.start)
    if spec.service_name:
        problems.check_each("spec.serviceName", spec.service_name, dns1123_label_errors(spec.service_name))
    policy = spec.persistent_volume_claim_retention_policy
    problems.one_of("spec.persistentVolumeClaimRetentionPolicy.whenDeleted", policy.when_deleted, RETENTION_POLICIES)
    problems.one_of("spec.persistentVolumeClaimRetentionPolicy.whenScaled", policy.when_scaled, RETENTION_POLICIES)
    # Containers may mount the claim templates by name: the pods will have those volumes.
    template = spec.template.model_copy(deep=True)
    present = {volume.name for volume in template.spec.volumes or []}
    template.spec.volumes = [*(template.spec.volumes or []), *(
        Volume.model_validate({"name": claim.metadata.name, "persistentVolumeClaim": {"claimName": claim.metadata.name}})
        for claim in spec.volume_claim_templates or [] if claim.metadata.name and claim.metadata.name not in present)]
    validate_replicated_template(problems, spec.selector, template, "StatefulSet")
    names = set()
    for index, claim_template in enumerate(spec.volume_claim_templates or []):
        path = f"spec.volumeClaimTemplates[{index}]"
        if not claim_template.metadata.name:
            problems.required(f"{path}.metadata.name")
        elif claim_template.metadata.name in names:
            problems.add(f"{path}.metadata.name", f'Duplicate value: "{claim_template.metadata.name}"')
        else:
            problems.check_each(f"{path}.metadata.name", claim_template.metadata.name,
                                dns1123_subdomain_errors(claim_template.metadata.name))
        names.add(claim_template.metadata.name)
        validate_claim_template_spec(problems, f"{path}.spec", claim_template.spec)
    return problems.items


def validate_stateful_set_update(new: StatefulSet, old: StatefulSet) -> list[tuple[str, str]]:
    """Only the fields Kubernetes lets change may change (`ValidateStatefulSetUpdate`)."""
    problems = Problems()
    new_spec, old_spec = new.spec.to_dict(), old.spec.to_dict()
    for field in STATEFULSET_MUTABLE:
        new_spec.pop(field, None)
        old_spec.pop(field, None)
    if new_spec != old_spec:
        problems.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                           "'template', 'updateStrategy', 'revisionHistoryLimit', "
                           "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
    return problems.items
