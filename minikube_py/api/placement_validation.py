"""Validation of a pod's scheduling fields and a node's taints, with Kubernetes' field paths and
messages (k/k `pkg/apis/core/validation`: validateAffinity, validateNodeSelector,
validatePodAffinityTerm, validateTolerations, validateTopologySpreadConstraints,
validateSchedulingGates, validateNodeTaints).

Affinity that contradicts itself in a way Kubernetes rejects (an `In` with no values, a required
node affinity with no terms, a pod affinity term without a topology key, a weight outside 1-100)
is refused here; affinity that is well formed but can never match (a key both `In [a]` and
`NotIn [a]`) is accepted, as Kubernetes does, and the scheduler reports it as FailedScheduling.
Like volume_validation.py, it receives the problem collector and the label selector check from
validation.py rather than importing that module in a circle.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from minikube_py.api.meta import LabelSelector
from minikube_py.api.names import dns1123_label_errors, dns1123_subdomain_errors, label_value_errors, qualified_name_errors
from minikube_py.api.placement import (
    TAINT_EFFECTS,
    Affinity,
    NodeSelector,
    NodeSelectorTerm,
    PodAffinityTerm,
    PodSchedulingGate,
    Taint,
    Toleration,
    TopologySpreadConstraint,
    WeightedPodAffinityTerm,
)

NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
NODE_FIELD_SELECTOR_KEYS = ("metadata.name",)
WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
NODE_INCLUSION_POLICIES = ("Ignore", "Honor")
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
REQUIRED = "required_during_scheduling_ignored_during_execution"
PREFERRED = "preferred_during_scheduling_ignored_during_execution"
REQUIRED_WIRE = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED_WIRE = "preferredDuringSchedulingIgnoredDuringExecution"


class ProblemSink(Protocol):
    """What `validation.Problems` offers; named here so this module does not import it."""

    def add(self, path: str, message: str) -> None: ...
    def required(self, path: str, detail: str = "") -> None: ...
    def invalid(self, path: str, value: Any, detail: str) -> None: ...
    def unsupported(self, path: str, value: Any, supported: tuple[str, ...]) -> None: ...
    def duplicate(self, path: str, value: Any) -> None: ...
    def forbidden(self, path: str, detail: str) -> None: ...
    def check_each(self, path: str, value: Any, reasons: list[str]) -> None: ...
    def one_of(self, path: str, value: str | None, supported: tuple[str, ...]) -> None: ...


SelectorCheck = Callable[[Any, str, LabelSelector], bool]


def _weight(problems: ProblemSink, path: str, weight: int) -> None:
    if not 1 <= weight <= 100:
        problems.invalid(path, weight, "must be in the range 1-100")


def validate_node_selector_term(problems: ProblemSink, path: str, term: NodeSelectorTerm) -> None:
    for index, requirement in enumerate(term.match_expressions or []):
        at = f"{path}.matchExpressions[{index}]"
        values = requirement.values or []
        operator = requirement.operator
        if operator in ("In", "NotIn"):
            if not values:
                problems.required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                problems.forbidden(f"{at}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        elif operator in ("Gt", "Lt"):
            if len(values) != 1:
                problems.required(f"{at}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
        else:
            problems.invalid(f"{at}.operator", operator, "not a valid selector operator")
        problems.check_each(f"{at}.key", requirement.key, qualified_name_errors(requirement.key))
    for index, requirement in enumerate(term.match_fields or []):
        at = f"{path}.matchFields[{index}]"
        if requirement.operator in ("In", "NotIn"):
            if len(requirement.values or []) != 1:
                problems.required(f"{at}.values",
                                  "must be only one value when `operator` is 'In' or 'NotIn' for node field selector")
        else:
            problems.invalid(f"{at}.operator", requirement.operator, "not a valid selector operator")
        if requirement.key not in NODE_FIELD_SELECTOR_KEYS:
            problems.invalid(f"{at}.key", requirement.key, "not a valid field selector key")


def _validate_node_selector(problems: ProblemSink, path: str, selector: NodeSelector) -> None:
    if not selector.node_selector_terms:
        problems.required(f"{path}.nodeSelectorTerms", "must have at least one node selector term")
    for index, term in enumerate(selector.node_selector_terms):
        validate_node_selector_term(problems, f"{path}.nodeSelectorTerms[{index}]", term)


def _validate_pod_affinity_term(problems: ProblemSink, path: str, term: PodAffinityTerm,
                                check_selector: SelectorCheck) -> None:
    if term.label_selector is not None:
        check_selector(problems, f"{path}.labelSelector", term.label_selector)
    if term.namespace_selector is not None:
        check_selector(problems, f"{path}.namespaceSelector", term.namespace_selector)
    for namespace in term.namespaces or []:
        problems.check_each(f"{path}.namespace", namespace, dns1123_label_errors(namespace))
    if not term.topology_key:
        problems.required(f"{path}.topologyKey", "can not be empty")
    else:
        problems.check_each(f"{path}.topologyKey", term.topology_key, qualified_name_errors(term.topology_key))
    _validate_label_keys(problems, path, term)


def _validate_label_keys(problems: ProblemSink, path: str, term: PodAffinityTerm) -> None:
    """matchLabelKeys and mismatchLabelKeys: label keys, not both naming one key, and not keys the
    labelSelector already uses (validateMatchLabelKeysAndMismatchLabelKeys)."""
    match_keys, mismatch_keys = term.match_label_keys or [], term.mismatch_label_keys or []
    for field, keys in (("matchLabelKeys", match_keys), ("mismatchLabelKeys", mismatch_keys)):
        for index, key in enumerate(keys):
            problems.check_each(f"{path}.{field}[{index}]", key, qualified_name_errors(key))
    for index, key in enumerate(mismatch_keys):
        if key in match_keys:
            problems.invalid(f"{path}.mismatchLabelKeys[{index}]", key,
                             "exists in both matchLabelKeys and mismatchLabelKeys")
    if (match_keys or mismatch_keys) and term.label_selector is None:
        problems.required(f"{path}.labelSelector",
                          "must be specified when `matchLabelKeys` or `mismatchLabelKeys` is set")


def _validate_weighted_terms(problems: ProblemSink, path: str, terms: list[WeightedPodAffinityTerm],
                             check_selector: SelectorCheck) -> None:
    for index, weighted in enumerate(terms):
        at = f"{path}[{index}]"
        _weight(problems, f"{at}.weight", weighted.weight)
        _validate_pod_affinity_term(problems, f"{at}.podAffinityTerm", weighted.pod_affinity_term, check_selector)


def validate_affinity(problems: ProblemSink, path: str, affinity: Affinity | None, check_selector: SelectorCheck) -> None:
    if affinity is None:
        return
    node = affinity.node_affinity
    if node is not None:
        at = f"{path}.nodeAffinity"
        required = getattr(node, REQUIRED)
        if required is not None:
            _validate_node_selector(problems, f"{at}.{REQUIRED_WIRE}", required)
        for index, preferred in enumerate(getattr(node, PREFERRED) or []):
            term_at = f"{at}.{PREFERRED_WIRE}[{index}]"
            _weight(problems, f"{term_at}.weight", preferred.weight)
            validate_node_selector_term(problems, f"{term_at}.preference", preferred.preference)
    for field, pod_affinity in (("podAffinity", affinity.pod_affinity), ("podAntiAffinity", affinity.pod_anti_affinity)):
        if pod_affinity is None:
            continue
        at = f"{path}.{field}"
        for index, term in enumerate(getattr(pod_affinity, REQUIRED) or []):
            _validate_pod_affinity_term(problems, f"{at}.{REQUIRED_WIRE}[{index}]", term, check_selector)
        _validate_weighted_terms(problems, f"{at}.{PREFERRED_WIRE}", getattr(pod_affinity, PREFERRED) or [],
                                 check_selector)


def validate_tolerations(problems: ProblemSink, path: str, tolerations: list[Toleration] | None) -> None:
    for index, toleration in enumerate(tolerations or []):
        at = f"{path}[{index}]"
        if toleration.key:
            problems.check_each(f"{at}.key", toleration.key, qualified_name_errors(toleration.key))
        operator = toleration.operator or ""
        if not toleration.key and operator != "Exists":
            problems.invalid(f"{at}.operator", operator,
                             'operator must be Exists when `key` is empty, which means "match all values and all keys"')
        if toleration.toleration_seconds is not None and toleration.effect != "NoExecute":
            problems.invalid(f"{at}.effect", toleration.effect or "",
                             "effect must be 'NoExecute' when `tolerationSeconds` is set")
        if operator in ("", "Equal"):
            value = toleration.value or ""
            problems.check_each(f"{at}.operator", value, label_value_errors(value))
        elif operator == "Exists":
            if toleration.value:
                problems.invalid(f"{at}.operator", toleration, "value must be empty when `operator` is 'Exists'")
        else:
            problems.unsupported(f"{at}.operator", operator, ("Equal", "Exists"))
        if toleration.effect:
            problems.one_of(f"{at}.effect", toleration.effect, TAINT_EFFECTS)


def validate_taints(problems: ProblemSink, path: str, taints: list[Taint] | None) -> None:
    seen: set[tuple[str, str]] = set()
    for index, taint in enumerate(taints or []):
        at = f"{path}[{index}]"
        problems.check_each(f"{at}.key", taint.key, qualified_name_errors(taint.key))
        if taint.value:
            problems.check_each(f"{at}.value", taint.value, label_value_errors(taint.value))
        if not taint.effect:
            problems.required(f"{at}.effect")
        else:
            problems.one_of(f"{at}.effect", taint.effect, TAINT_EFFECTS)
        if (taint.key, taint.effect) in seen:
            problems.add(at, f"Duplicate value: {taint.key}={taint.value or ''}:{taint.effect}: "
                             "taints must be unique by key and effect pair")
        seen.add((taint.key, taint.effect))


def validate_topology_spread_constraints(problems: ProblemSink, path: str,
                                         constraints: list[TopologySpreadConstraint] | None,
                                         check_selector: SelectorCheck) -> None:
    seen: set[tuple[str, str]] = set()
    for index, constraint in enumerate(constraints or []):
        at = f"{path}[{index}]"
        if constraint.max_skew <= 0:
            problems.invalid(f"{at}.maxSkew", constraint.max_skew, "must be greater than zero")
        if not constraint.topology_key:
            problems.required(f"{at}.topologyKey", "can not be empty")
        else:
            problems.check_each(f"{at}.topologyKey", constraint.topology_key,
                                qualified_name_errors(constraint.topology_key))
        problems.one_of(f"{at}.whenUnsatisfiable", constraint.when_unsatisfiable, WHEN_UNSATISFIABLE)
        if constraint.min_domains is not None:
            if constraint.min_domains <= 0:
                problems.invalid(f"{at}.minDomains", constraint.min_domains, "must be greater than 0")
            elif constraint.when_unsatisfiable != "DoNotSchedule":
                problems.invalid(f"{at}.minDomains", constraint.min_domains,
                                 f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, "
                                 f"not {constraint.when_unsatisfiable}")
        pair = (constraint.topology_key, constraint.when_unsatisfiable)
        if pair in seen:
            problems.duplicate(f"{at}.{{topologyKey, whenUnsatisfiable}}", f"{pair[0]}, {pair[1]}")
        seen.add(pair)
        if constraint.label_selector is not None:
            check_selector(problems, f"{at}.labelSelector", constraint.label_selector)
        problems.one_of(f"{at}.nodeAffinityPolicy", constraint.node_affinity_policy, NODE_INCLUSION_POLICIES)
        problems.one_of(f"{at}.nodeTaintsPolicy", constraint.node_taints_policy, NODE_INCLUSION_POLICIES)
        selector_keys = set((constraint.label_selector.match_labels or {}) if constraint.label_selector else {})
        for key_index, key in enumerate(constraint.match_label_keys or []):
            problems.check_each(f"{at}.matchLabelKeys[{key_index}]", key, qualified_name_errors(key))
            if key in selector_keys:
                problems.invalid(f"{at}.matchLabelKeys[{key_index}]", key, "exists in both matchLabelKeys and labelSelector")


def validate_scheduling_gates(problems: ProblemSink, path: str, gates: list[PodSchedulingGate] | None) -> None:
    names: set[str] = set()
    for index, gate in enumerate(gates or []):
        problems.check_each(f"{path}[{index}].name", gate.name, qualified_name_errors(gate.name))
        if gate.name in names:
            problems.duplicate(f"{path}[{index}].name", gate.name)
        names.add(gate.name)


def validate_pod_placement(problems: ProblemSink, path: str, spec: Any, check_selector: SelectorCheck) -> None:
    """Every scheduling field of a PodSpec (`spec` is a `core.PodSpec`)."""
    validate_affinity(problems, f"{path}.affinity", spec.affinity, check_selector)
    validate_tolerations(problems, f"{path}.tolerations", spec.tolerations)
    validate_topology_spread_constraints(problems, f"{path}.topologySpreadConstraints",
                                         spec.topology_spread_constraints, check_selector)
    validate_scheduling_gates(problems, f"{path}.schedulingGates", spec.scheduling_gates)
    if spec.priority_class_name:
        problems.check_each(f"{path}.priorityClassName", spec.priority_class_name,
                            dns1123_subdomain_errors(spec.priority_class_name))
    problems.one_of(f"{path}.preemptionPolicy", spec.preemption_policy, PREEMPTION_POLICIES)
    if spec.scheduling_gates and spec.node_name:
        problems.forbidden(f"{path}.nodeName", "cannot be set until all schedulingGates have been cleared")


def validate_scheduling_gates_update(problems: ProblemSink, path: str, new: list[dict[str, Any]] | None,
                                     old: list[dict[str, Any]] | None) -> None:
    """Gates can only be removed once the pod exists (validateSchedulingGates on update)."""
    old_names = {gate.get("name") for gate in old or []}
    for gate in new or []:
        if gate.get("name") not in old_names:
            problems.forbidden(path, f"only deletion is allowed, but found new scheduling gate '{gate.get('name')}'")
