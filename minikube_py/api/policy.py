"""`policy/v1` PodDisruptionBudget and Eviction: how many of an application's pods voluntary
disruptions may take down at once, and the request that asks to take one down.

A PDB selects pods by label and says `minAvailable` or `maxUnavailable` (a number or a percent of
the pods its controller wants). The disruption controller (controllers/disruption.py) keeps its
status: `currentHealthy`, `desiredHealthy`, `expectedPods`, `disruptionsAllowed` and the
`DisruptionAllowed` condition. An Eviction posted to a pod's `/eviction` subresource
(apiserver/eviction.py) deletes the pod only when every PDB covering it allows one more
disruption; otherwise it is refused with 429, as kube-apiserver does. `kubectl drain` evicts
through it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from minikube_py.api.meta import Int32, Int64, IntOrString, LabelSelector, ObjectMeta, WireModel, WithConditions
from minikube_py.api.names import dns1123_subdomain_errors
from minikube_py.api.validation import Problems, percent_or_int, validate_label_selector, validate_metadata

UNHEALTHY_POD_EVICTION_POLICIES = ("IfHealthyBudget", "AlwaysAllow")
DISRUPTION_ALLOWED = "DisruptionAllowed"


class PodDisruptionBudgetSpec(WireModel):
    min_available: IntOrString | None = None
    max_unavailable: IntOrString | None = None
    selector: LabelSelector | None = None
    unhealthy_pod_eviction_policy: str | None = None


class PodDisruptionBudgetCondition(WireModel):
    type: str
    status: str
    observed_generation: Int64 | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class PodDisruptionBudgetStatus(WithConditions, WireModel):
    observed_generation: Int64 | None = None
    disrupted_pods: dict[str, str] | None = None
    disruptions_allowed: Int32 = 0
    current_healthy: Int32 = 0
    desired_healthy: Int32 = 0
    expected_pods: Int32 = 0
    conditions: list[PodDisruptionBudgetCondition] | None = None


class PodDisruptionBudget(WireModel):
    api_version: str = "policy/v1"
    kind: str = "PodDisruptionBudget"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodDisruptionBudgetSpec = Field(default_factory=PodDisruptionBudgetSpec)
    status: PodDisruptionBudgetStatus = Field(default_factory=PodDisruptionBudgetStatus)


class DeleteOptions(WireModel):
    api_version: str | None = None
    kind: str | None = None
    grace_period_seconds: Int64 | None = None
    preconditions: dict[str, Any] | None = None
    propagation_policy: str | None = None
    dry_run: list[str] | None = None
    orphan_dependents: bool | None = None


class Eviction(WireModel):
    api_version: str = "policy/v1"
    kind: str = "Eviction"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    delete_options: DeleteOptions | None = None


def validate_pod_disruption_budget(pdb: PodDisruptionBudget) -> list[tuple[str, str]]:
    """ValidatePodDisruptionBudget: one of minAvailable and maxUnavailable, each a non-negative
    number or a percent up to 100, and a valid selector."""
    problems = Problems()
    validate_metadata(problems, pdb.metadata, True, dns1123_subdomain_errors)
    spec = pdb.spec
    if spec.min_available is not None and spec.max_unavailable is not None:
        problems.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")
    for field, value in (("minAvailable", spec.min_available), ("maxUnavailable", spec.max_unavailable)):
        number = percent_or_int(problems, f"spec.{field}", value)
        if isinstance(value, str) and number is not None and number > 100:
            problems.invalid(f"spec.{field}", value, "must not be greater than 100%")
    if spec.selector is not None:
        validate_label_selector(problems, "spec.selector", spec.selector)
    problems.one_of("spec.unhealthyPodEvictionPolicy", spec.unhealthy_pod_eviction_policy, UNHEALTHY_POD_EVICTION_POLICIES)
    return problems.items
