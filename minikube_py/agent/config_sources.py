"""The values a container's environment takes from ConfigMaps, Secrets, its resources and Services.

Kubelet resolves `envFrom` (every key of a ConfigMap or Secret, with an optional prefix) and
`env[].valueFrom` (`configMapKeyRef`, `secretKeyRef`, `resourceFieldRef`) when it creates the
container, from its cache of the API. A missing object or key that is not `optional` stops the
container with `CreateContainerConfigError` and kubelet's own message; the agent re-syncs the
pods that name a ConfigMap or Secret when it changes (`referenced_objects`), so such a pod starts
by itself once the object appears. Values are read once, at creation: a later change reaches
the environment only when the container is created again, as in Kubernetes.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Callable

from minikube_py.agent.service_env import service_environment
from minikube_py.api.quantity import parse_quantity
from minikube_py.runtime.types import ContainerRuntimeError

CONFIG_ERROR = "CreateContainerConfigError"
# (kind as the cache names it in "not found", kind in "couldn't find key" messages)
CONFIG_MAP = ("configmap", "ConfigMap")
SECRET = ("secret", "Secret")

Lookup = Callable[[str, str], Any]  # (namespace, name) -> the cached object, or None


class EnvSources:
    """Reads ConfigMaps and Secrets from the agent's caches, and the node's allocatable resources."""

    def __init__(self, config_maps: Lookup, secrets: Lookup, allocatable: dict[str, str],
                 services: Callable[[], list[Any]] | None = None):
        self.config_maps = config_maps
        self.secrets = secrets
        self.allocatable = allocatable
        self.services = services

    def service_env(self, pod) -> dict[str, str]:
        """The Service variables for the pod's containers, from the Services cached now."""
        if self.services is None:
            return {}
        links = pod.spec.enable_service_links is not False
        return service_environment(self.services(), pod.metadata.namespace, links)

    def _data(self, kind: tuple[str, str], namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        """The object's data as text (Secrets decoded), None when it is missing and optional."""
        obj = (self.config_maps if kind is CONFIG_MAP else self.secrets)(namespace, name)
        if obj is None:
            if optional:
                return None
            raise ContainerRuntimeError(CONFIG_ERROR, f'{kind[0]} "{name}" not found')
        if kind is CONFIG_MAP:
            return dict(obj.data or {})
        decoded: dict[str, str] = {}
        for key, value in (obj.data or {}).items():
            try:
                decoded[key] = base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
            except (binascii.Error, ValueError):
                raise ContainerRuntimeError(CONFIG_ERROR, f"secret {namespace}/{name}: key {key} is not valid base64; "
                                                          "re-create the Secret") from None
        return decoded

    def env_from(self, pod, container) -> list[tuple[str, str]]:
        """`envFrom` in order: each object's keys (sorted), prefixed; missing optional objects add nothing."""
        result: list[tuple[str, str]] = []
        for source in container.env_from or []:
            reference, kind = ((source.config_map_ref, CONFIG_MAP) if source.config_map_ref is not None
                               else (source.secret_ref, SECRET))
            data = self._data(kind, pod.metadata.namespace, reference.name or "", bool(reference.optional))
            for key in sorted(data or {}):
                result.append(((source.prefix or "") + key, (data or {})[key]))
        return result

    def value_from(self, pod, container, source) -> str | None:
        """One `env[].valueFrom` other than fieldRef; None when an optional object or key is missing."""
        if source.resource_field_ref is not None:
            return self.resource_value(pod, container, source.resource_field_ref)
        reference, kind = ((source.config_map_key_ref, CONFIG_MAP) if source.config_map_key_ref is not None
                           else (source.secret_key_ref, SECRET))
        optional = bool(reference.optional)
        data = self._data(kind, pod.metadata.namespace, reference.name or "", optional)
        if data is None:
            return None
        if reference.key not in data:
            if optional:
                return None
            raise ContainerRuntimeError(
                CONFIG_ERROR, f"couldn't find key {reference.key} in {kind[1]} {pod.metadata.namespace}/{reference.name}")
        return data[reference.key]

    def resource_value(self, pod, container, reference) -> str:
        """limits.* / requests.* of a container divided by `divisor`, rounded up, as kubelet computes
        them; an unset limit is the node's allocatable amount, an unset request 0."""
        target = container
        if reference.container_name:
            everything = list(pod.spec.containers or []) + list(pod.spec.init_containers or [])
            target = next((each for each in everything if each.name == reference.container_name), None)
            if target is None:
                raise ContainerRuntimeError(CONFIG_ERROR, f"container {reference.container_name} not found in pod "
                                                          f"{pod.metadata.namespace}/{pod.metadata.name}")
        which, _, resource = reference.resource.partition(".")
        resources = target.resources
        amounts = dict(getattr(resources, which, None) or {}) if resources is not None else {}
        if which == "requests" and resource not in amounts:
            # Defaulting copies a limit into an unset request.
            amounts = {**dict(getattr(resources, "limits", None) or {}), **amounts} if resources is not None else {}
        amount = amounts.get(resource)
        if amount is None:
            amount = self.allocatable.get(resource, "0") if which == "limits" else "0"
        divisor = parse_quantity(str(reference.divisor if reference.divisor is not None else "1"))
        if resource == "cpu":
            # kubelet divides millicores by the divisor's millicores.
            millis = math.ceil(parse_quantity(str(amount)) * 1000)
            return str(math.ceil(millis / math.ceil(divisor * 1000)))
        return str(math.ceil(math.ceil(parse_quantity(str(amount))) / divisor))


def referenced_objects(pod) -> set[tuple[str, str]]:
    """("configmaps" | "secrets", name) for every ConfigMap and Secret the pod's containers' env names."""
    names: set[tuple[str, str]] = set()
    for container in list(pod.spec.containers or []) + list(pod.spec.init_containers or []):
        for source in container.env_from or []:
            if source.config_map_ref is not None:
                names.add(("configmaps", source.config_map_ref.name or ""))
            if source.secret_ref is not None:
                names.add(("secrets", source.secret_ref.name or ""))
        for variable in container.env or []:
            value_from = variable.value_from
            if value_from is None:
                continue
            if value_from.config_map_key_ref is not None:
                names.add(("configmaps", value_from.config_map_key_ref.name or ""))
            if value_from.secret_key_ref is not None:
                names.add(("secrets", value_from.secret_key_ref.name or ""))
    return names
