"""The pods/ephemeralcontainers subresource: debugging containers added to a running pod.

`kubectl debug -it POD --image=busybox --target=main` patches this subresource (strategic merge,
keyed by name) with one more ephemeral container, waits for it in `ephemeralContainerStatuses`
and attaches to it. As in Kubernetes only `spec.ephemeralContainers` changes here, and only by
adding containers: an existing one may not be changed or removed, names are unique among all the
pod's containers, a target must be one of `spec.containers`, and what a one-shot debugging
container cannot have (ports, probes, lifecycle hooks, resources) is refused.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api import names

FORBIDDEN_FIELDS = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resources")


def problems(current: dict, desired: Any) -> list[tuple[str, str]]:
    """What is wrong with `desired`'s ephemeral containers, as (field path, message) pairs."""
    spec = current.get("spec") or {}
    desired_spec = desired.get("spec") if isinstance(desired, dict) else None
    if not isinstance(desired_spec, dict):
        return [("spec", "Required value: send the pod with spec.ephemeralContainers")]
    wanted = desired_spec.get("ephemeralContainers") or []
    if not isinstance(wanted, list) or not all(isinstance(item, dict) for item in wanted):
        return [("spec.ephemeralContainers", "Invalid value: must be a list of containers")]
    found: list[tuple[str, str]] = []
    existing = {item.get("name"): item for item in spec.get("ephemeralContainers") or []}
    wanted_names = [item.get("name") for item in wanted]
    for name, item in existing.items():
        if name not in wanted_names:
            found.append(("spec.ephemeralContainers", f'Forbidden: existing ephemeral containers "{name}" may not be removed'))
        elif wanted[wanted_names.index(name)] != item:
            found.append(("spec.ephemeralContainers", f'Forbidden: existing ephemeral containers "{name}" may not be changed'))
    taken = {c.get("name") for key in ("containers", "initContainers") for c in spec.get(key) or []}
    targets = {c.get("name") for c in spec.get("containers") or []}
    for index, item in enumerate(wanted):
        path = f"spec.ephemeralContainers[{index}]"
        name = item.get("name")
        if not isinstance(name, str) or not name:
            found.append((f"{path}.name", "Required value"))
        elif not names.is_dns1123_label(name):
            found.append((f"{path}.name", f'Invalid value: "{name}": must be a lowercase RFC 1123 label'))
        elif name in taken or wanted_names.count(name) > 1:
            found.append((f"{path}.name", f'Duplicate value: "{name}"'))
        if not item.get("image"):
            found.append((f"{path}.image", "Required value"))
        target = item.get("targetContainerName")
        if target is not None and target not in targets:
            found.append((f"{path}.targetContainerName", f'Not found: "{target}"'))
        for field in FORBIDDEN_FIELDS:
            if item.get(field):
                found.append((f"{path}.{field}", "Forbidden: cannot be set for an Ephemeral Container"))
    return found
