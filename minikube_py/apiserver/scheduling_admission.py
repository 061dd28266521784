"""The scheduling admission steps of object creation: Priority and DefaultTolerationSeconds for
pods, and the one-default rule for PriorityClasses (kube-apiserver's `Priority` and
`DefaultTolerationSeconds` admission plugins, k/k `plugin/pkg/admission/priority` and
`plugin/pkg/admission/defaulttolerationseconds`).

Priority: a pod naming a PriorityClass gets the class's value in `spec.priority` and its
`preemptionPolicy`; a pod naming none gets the global default class (and its name), or priority
0 without one. A missing class, or a `priority` the pod set itself that differs, is refused with
403 as Kubernetes does. DefaultTolerationSeconds: unless the pod already tolerates them, it gets
`node.kubernetes.io/not-ready` and `node.kubernetes.io/unreachable` NoExecute tolerations for 300
s, so a node that goes away has its pods evicted five minutes later by taint eviction; the
registry's `default_tolerations` holds the two durations (kube-apiserver's
`--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`, which
`start` takes too).

The system classes are created with the registry's first start (`ensure_system_priority_classes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minikube_py.api import errors
from minikube_py.api.placement import NO_EXECUTE, TAINT_NOT_READY, TAINT_UNREACHABLE
from minikube_py.api.scheduling import PREEMPT_LOWER_PRIORITY, SYSTEM_PRIORITY_CLASSES

DEFAULT_TOLERATION_SECONDS = 300


@dataclass(frozen=True)
class DefaultTolerationSeconds:
    """The tolerationSeconds of the two tolerations a pod gets when it has none for these taints."""

    not_ready: int = DEFAULT_TOLERATION_SECONDS
    unreachable: int = DEFAULT_TOLERATION_SECONDS


class Forbidden(errors.ApiError):
    code = 403
    reason = "Forbidden"


def _pod_forbidden(body: dict, detail: str) -> Forbidden:
    name = (body.get("metadata") or {}).get("name") or ""
    return Forbidden(f'pods "{name}" is forbidden: {detail}', {"name": name, "kind": "pods"})


def _priority_classes(registry) -> list[dict]:
    return registry.store.list("priorityclasses")[0]


def admit_pod_priority(registry, body: dict) -> None:
    """Set spec.priority, priorityClassName and preemptionPolicy from the pod's PriorityClass."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return  # validation will say what is wrong
    name = spec.get("priorityClassName")
    if name:
        found = registry.store.get("priorityclasses", "", name)
        if found is None:
            raise _pod_forbidden(body, f"no PriorityClass with name {name} was found")
    else:
        defaults = [pc for pc in _priority_classes(registry) if pc.get("globalDefault")]
        # Several defaults can only come from a race; Kubernetes takes the lowest value then.
        found = min(defaults, key=lambda pc: pc.get("value", 0)) if defaults else None
        if found is not None:
            spec["priorityClassName"] = found["metadata"]["name"]
    priority = found.get("value", 0) if found is not None else 0
    policy = (found.get("preemptionPolicy") if found is not None else None) or PREEMPT_LOWER_PRIORITY
    given = spec.get("priority")
    if given is not None and given != priority:
        raise _pod_forbidden(body, f"the integer value of priority ({given}) must not be provided in pod spec; "
                                   f"priority admission controller computed {priority} from the given PriorityClass name")
    given_policy = spec.get("preemptionPolicy")
    if given_policy is not None and given_policy != policy:
        raise _pod_forbidden(body, f"the string value of PreemptionPolicy ({given_policy}) must not be provided in "
                                   f"pod spec; priority admission controller computed {policy} from the given "
                                   "PriorityClass name")
    spec["priority"] = priority
    spec["preemptionPolicy"] = policy


def _tolerates(tolerations: list[Any], key: str) -> bool:
    for toleration in tolerations:
        if not isinstance(toleration, dict):
            continue
        if toleration.get("key") in (key, None, "") and toleration.get("effect") in (NO_EXECUTE, None, ""):
            return True
    return False


def admit_pod_default_tolerations(body: dict, seconds: DefaultTolerationSeconds = DefaultTolerationSeconds()) -> None:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        return  # validation will say what is wrong
    tolerations = list(tolerations or [])
    for key, duration in ((TAINT_NOT_READY, seconds.not_ready), (TAINT_UNREACHABLE, seconds.unreachable)):
        if not _tolerates(tolerations, key):
            tolerations.append({"key": key, "operator": "Exists", "effect": NO_EXECUTE, "tolerationSeconds": duration})
    spec["tolerations"] = tolerations


def admit_pod_scheduling(registry, body: dict) -> None:
    admit_pod_priority(registry, body)
    admit_pod_default_tolerations(body, registry.default_tolerations)


def admit_priority_class(registry, body: dict, replacing: str | None = None) -> None:
    """Only one PriorityClass may be the global default."""
    if not body.get("globalDefault"):
        return
    name = (body.get("metadata") or {}).get("name") or ""
    for other in _priority_classes(registry):
        other_name = other["metadata"]["name"]
        if other.get("globalDefault") and other_name not in (name, replacing):
            raise Forbidden(f'priorityclasses.scheduling.k8s.io "{name}" is forbidden: PriorityClass {other_name} '
                            "is already marked as default. Only one default can exist",
                            {"name": name, "group": "scheduling.k8s.io", "kind": "priorityclasses"})


def system_priority_class_bodies() -> list[dict]:
    return [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
             "value": value, "description": description, "preemptionPolicy": PREEMPT_LOWER_PRIORITY}
            for name, (value, description) in SYSTEM_PRIORITY_CLASSES.items()]
