"""Defaulting and validation of the `apps/v1` kinds that carry their own rules: StatefulSet,
DaemonSet and ControllerRevision.

Follows k/k `pkg/apis/apps/v1/defaults.go` (SetDefaults_StatefulSet, SetDefaults_DaemonSet),
`pkg/apis/apps/validation/validation.go` (ValidateStatefulSet, ValidateDaemonSet,
ValidateControllerRevision and their updates) with the API server's wording, and the
DaemonSet strategy's template generation (`pkg/registry/apps/daemonset/strategy.go`).
`api.resources` attaches these functions to the kinds; the registry calls
`stamp_template_generation`.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api.apps import (
    ControllerRevision,
    DaemonSet,
    RollingUpdateDaemonSet,
    RollingUpdateStatefulSetStrategy,
    StatefulSet,
)
from minikube_py.api.core import Volume
from minikube_py.api.defaults import default_pod_spec
from minikube_py.api.meta import IntOrString
from minikube_py.api.names import dns1123_label_errors, dns1123_subdomain_errors
from minikube_py.api.selectors import Selector
from minikube_py.api.storage_validation import validate_claim_template_spec
from minikube_py.api.validation import (
    Problems,
    percent_or_int,
    validate_label_selector,
    validate_labels,
    validate_metadata,
    validate_pod_spec,
    validate_replicated_template,
)


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


# `extensions.DaemonSetTemplateGenerationKey`: the template's generation, counted by the API
# server (the internal `spec.templateGeneration`, shown in apps/v1 as this annotation).
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
DAEMONSET_STRATEGIES = ("RollingUpdate", "OnDelete")


def default_daemon_set(daemon_set: DaemonSet) -> None:
    """SetDefaults_DaemonSet: the namespace, the pod template's defaults and, for RollingUpdate,
    maxUnavailable 1 and maxSurge 0."""
    if not daemon_set.metadata.namespace:
        daemon_set.metadata.namespace = "default"
    default_pod_spec(daemon_set.spec.template.spec)
    strategy = daemon_set.spec.update_strategy
    if strategy.type == "RollingUpdate":
        if strategy.rolling_update is None:
            strategy.rolling_update = RollingUpdateDaemonSet()
        if strategy.rolling_update.max_unavailable is None:
            strategy.rolling_update.max_unavailable = 1
        if strategy.rolling_update.max_surge is None:
            strategy.rolling_update.max_surge = 0


def _go_strategy_value(daemon_set: DaemonSet) -> str:
    """The strategy as Go's `%#v` prints it in kube-apiserver's Unsupported value message."""
    strategy = daemon_set.spec.update_strategy
    rolling = "(*apps.RollingUpdateDaemonSet)(nil)" if strategy.rolling_update is None else \
        "(*apps.RollingUpdateDaemonSet)(...)"
    return f'apps.DaemonSetUpdateStrategy{{Type:"{strategy.type}", RollingUpdate:{rolling}}}'


def _int_or_percent_value(value: IntOrString | None) -> int:
    """getIntOrPercentValue: the number of an int or a valid percentage, 0 otherwise."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return int(value[:-1])
    return 0


def _validate_rolling_update_daemon_set(problems: Problems, rolling: RollingUpdateDaemonSet) -> None:
    path = "spec.updateStrategy.rollingUpdate"
    percent_or_int(problems, f"{path}.maxUnavailable", rolling.max_unavailable)
    percent_or_int(problems, f"{path}.maxSurge", rolling.max_surge)
    for field, value in (("maxUnavailable", rolling.max_unavailable), ("maxSurge", rolling.max_surge)):
        if isinstance(value, str) and _int_or_percent_value(value) > 100:
            problems.invalid(f"{path}.{field}", value, "must not be greater than 100%")
    has_unavailable = _int_or_percent_value(rolling.max_unavailable) != 0
    has_surge = _int_or_percent_value(rolling.max_surge) != 0
    if has_unavailable and has_surge:
        problems.invalid(f"{path}.maxSurge", rolling.max_surge, "may not be set when maxUnavailable is non-zero")
    elif not has_unavailable and not has_surge:
        problems.required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0")


def validate_daemon_set(daemon_set: DaemonSet) -> list[tuple[str, str]]:
    """ValidateDaemonSet, in Kubernetes' order: selector, template labels, template, strategy."""
    problems = Problems()
    validate_metadata(problems, daemon_set.metadata, True, dns1123_subdomain_errors)
    spec = daemon_set.spec
    usable = spec.selector is None or validate_label_selector(problems, "spec.selector", spec.selector)
    # A missing selector selects nothing, so no template matches it (LabelSelectorAsSelector(nil)).
    if usable and not Selector.from_label_selector(spec.selector).matches(spec.template.metadata.labels or {}):
        problems.invalid("spec.template.metadata.labels", spec.template.metadata.labels or {},
                         "`selector` does not match template `labels`")
    if spec.selector is not None and not spec.selector.match_labels and not spec.selector.match_expressions:
        problems.invalid("spec.selector", spec.selector, "empty selector is invalid for daemonset")
    validate_labels(problems, "spec.template.metadata.labels", spec.template.metadata.labels)
    validate_pod_spec(problems, "spec.template.spec", spec.template.spec)
    if spec.template.spec.restart_policy in ("OnFailure", "Never"):
        problems.unsupported("spec.template.spec.restartPolicy", spec.template.spec.restart_policy, ("Always",))
    if spec.template.spec.active_deadline_seconds is not None:
        problems.forbidden("spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in DaemonSet is not Supported")
    problems.non_negative("spec.minReadySeconds", spec.min_ready_seconds)
    strategy = spec.update_strategy
    if strategy.type == "RollingUpdate":
        if strategy.rolling_update is None:
            problems.required("spec.updateStrategy.rollingUpdate")
        else:
            _validate_rolling_update_daemon_set(problems, strategy.rolling_update)
    elif strategy.type != "OnDelete":
        choices = ", ".join(f'"{choice}"' for choice in DAEMONSET_STRATEGIES)
        problems.add("spec.updateStrategy", f"Unsupported value: {_go_strategy_value(daemon_set)}: "
                                            f"supported values: {choices}")
    problems.non_negative("spec.revisionHistoryLimit", spec.revision_history_limit)
    return problems.items


def validate_daemon_set_update(new: DaemonSet, old: DaemonSet) -> list[tuple[str, str]]:
    """The selector may not change (`api.validate_update`); the status' collisionCount never goes down."""
    problems = Problems()
    if (new.status.collision_count or 0) < (old.status.collision_count or 0):
        problems.invalid("status.collisionCount", new.status.collision_count or 0, "cannot be decremented")
    return problems.items


def stamp_template_generation(new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The DaemonSet strategy's template generation, in the wire dict `new`: 1 on create, the
    old one on update, plus one when the pod template changed (a client cannot set it)."""
    generation = 1
    if old is not None:
        old_annotations = (old.get("metadata") or {}).get("annotations") or {}
        try:
            generation = int(old_annotations.get(TEMPLATE_GENERATION_ANNOTATION, "1"))
        except ValueError:
            generation = 1
        if ((new.get("spec") or {}).get("template")) != ((old.get("spec") or {}).get("template")):
            generation += 1
    metadata = new.setdefault("metadata", {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), TEMPLATE_GENERATION_ANNOTATION: str(generation)}
