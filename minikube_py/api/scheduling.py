"""`scheduling.k8s.io/v1` PriorityClass: a named pod priority.

A pod names its class in `spec.priorityClassName`; priority admission copies the class's `value`
into `spec.priority` (and its `preemptionPolicy`) when the pod is created, and the scheduler
orders its queue and picks preemption victims by that number. The class with `globalDefault:
true` (at most one) is given to pods that name none; without one their priority is 0. The two
system classes exist from the first start, as kube-apiserver makes them (k/k
`pkg/apis/scheduling/types.go`, `pkg/registry/scheduling/rest/storage_scheduling.go`).
"""

from __future__ import annotations

from pydantic import Field

from minikube_py.api.meta import Int32, ObjectMeta, WireModel
from minikube_py.api.names import dns1123_subdomain_errors
from minikube_py.api.validation import Problems, validate_metadata

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_PRIORITY_CLASS_PREFIX = "system-"
SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical"
SYSTEM_NODE_CRITICAL = "system-node-critical"
# name -> (value, description), as kube-apiserver creates them.
SYSTEM_PRIORITY_CLASSES = {
    SYSTEM_NODE_CRITICAL: (2_000_001_000, "Used for system critical pods that must not be moved from their current node."),
    SYSTEM_CLUSTER_CRITICAL: (2_000_000_000, "Used for system critical pods that must run in the cluster, "
                                             "but can be moved to another node if necessary."),
}
PREEMPT_LOWER_PRIORITY = "PreemptLowerPriority"


class PriorityClass(WireModel):
    api_version: str = "scheduling.k8s.io/v1"
    kind: str = "PriorityClass"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    value: Int32 = 0
    global_default: bool | None = None
    description: str | None = None
    preemption_policy: str | None = None


def default_priority_class(priority_class: PriorityClass) -> None:
    if priority_class.preemption_policy is None:
        priority_class.preemption_policy = PREEMPT_LOWER_PRIORITY


def system_class_problem(name: str, value: int) -> str | None:
    """IsKnownSystemPriorityClass's complaint, None for a known class with its own value."""
    known = SYSTEM_PRIORITY_CLASSES.get(name)
    if known is None:
        return f"{name} is not a known system priority class"
    if known[0] != value:
        return f"value of {name} PriorityClass must be {known[0]}"
    return None


def validate_priority_class(priority_class: PriorityClass) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, priority_class.metadata, False, dns1123_subdomain_errors)
    name = priority_class.metadata.name or ""
    if name.startswith(SYSTEM_PRIORITY_CLASS_PREFIX):
        problem = system_class_problem(name, priority_class.value)
        if problem:
            problems.forbidden("metadata.name", "priority class names with 'system-' prefix are reserved "
                                                f"for system use only. error: {problem}")
    elif priority_class.value > HIGHEST_USER_DEFINABLE_PRIORITY:
        problems.forbidden("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}")
    problems.one_of("preemptionPolicy", priority_class.preemption_policy, ("Never", "PreemptLowerPriority"))
    return problems.items


def validate_priority_class_update(new: PriorityClass, old: PriorityClass) -> list[tuple[str, str]]:
    problems = []
    if new.value != old.value:
        problems.append(("value", "Forbidden: may not be changed in an update."))
    if new.preemption_policy != old.preemption_policy:
        problems.append(("preemptionPolicy", f'Invalid value: "{new.preemption_policy}": field is immutable'))
    return problems
