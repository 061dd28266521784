"""Defaulting: what the API server fills in before it validates and stores an object.

Unconditional defaults live on the models as field defaults. This module applies the ones that
depend on other fields, in the order of k/k `pkg/apis/core/v1/defaults.go` and
`pkg/apis/apps/v1/defaults.go`: the namespace, imagePullPolicy from the image tag, the
rolling-update parameters of a RollingUpdate Deployment, and probe timings given as 0 (Kubernetes
treats 0 as "not set" for those).
"""

from __future__ import annotations

from minikube_py.api.quantity import parse_quantity

from minikube_py.api.apps import Deployment, ReplicaSet, RollingUpdateDeployment
from minikube_py.api.core import Container, Event, Pod, PodSpec, Probe
from minikube_py.api.meta import WireModel

DEFAULT_NAMESPACE = "default"
DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"


def image_tag(image: str) -> str | None:
    """The tag of an image reference, None when it has none (`busybox`, `reg:5000/app`, `app@sha256:..`)."""
    name = image.split("@", 1)[0]
    last_segment = name.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        return None
    return last_segment.rsplit(":", 1)[1]


def default_image_pull_policy(image: str) -> str:
    """`Always` for `:latest` or untagged images, else `IfNotPresent` (digests count as pinned)."""
    if "@" in image:
        return "IfNotPresent"
    tag = image_tag(image)
    return "Always" if tag is None or tag == "latest" else "IfNotPresent"


def _default_probe(probe: Probe | None) -> None:
    if probe is None:
        return
    if probe.period_seconds == 0:
        probe.period_seconds = 10
    if probe.timeout_seconds == 0:
        probe.timeout_seconds = 1
    if probe.success_threshold == 0:
        probe.success_threshold = 1
    if probe.failure_threshold == 0:
        probe.failure_threshold = 3
    if probe.http_get is not None and not probe.http_get.path:
        probe.http_get.path = "/"


def _is_valid_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except ValueError:
        return False
    return True


def _default_container(container: Container) -> None:
    # As Kubernetes does: a resource with a limit but no request is requested at its limit.
    if container.resources is not None and container.resources.limits:
        requests = dict(container.resources.requests or {})
        for resource, limit in container.resources.limits.items():
            # Invalid limits are left for validation to report once, on the field the user wrote.
            if _is_valid_quantity(limit) and (resource in ("cpu", "memory", "ephemeral-storage") or "/" in resource):
                requests.setdefault(resource, limit)
        container.resources.requests = requests
    if not container.image_pull_policy and container.image:
        container.image_pull_policy = default_image_pull_policy(container.image)
    for probe in (container.liveness_probe, container.readiness_probe, container.startup_probe):
        _default_probe(probe)


def default_pod_spec(spec: PodSpec) -> None:
    if spec.enable_service_links is None:
        spec.enable_service_links = True
    for container in [*spec.containers, *(spec.init_containers or [])]:
        _default_container(container)


def set_defaults(obj: WireModel) -> WireModel:
    """Fill in Kubernetes' conditional defaults in place; returns the same object."""
    metadata = getattr(obj, "metadata", None)
    if isinstance(obj, (Pod, ReplicaSet, Deployment, Event)) and metadata is not None and not metadata.namespace:
        metadata.namespace = DEFAULT_NAMESPACE
    if isinstance(obj, Pod):
        default_pod_spec(obj.spec)
    elif isinstance(obj, (ReplicaSet, Deployment)):
        default_pod_spec(obj.spec.template.spec)
    if isinstance(obj, Deployment):
        strategy = obj.spec.strategy
        if strategy.type == "RollingUpdate":
            if strategy.rolling_update is None:
                strategy.rolling_update = RollingUpdateDeployment()
            if strategy.rolling_update.max_unavailable is None:
                strategy.rolling_update.max_unavailable = DEFAULT_MAX_UNAVAILABLE
            if strategy.rolling_update.max_surge is None:
                strategy.rolling_update.max_surge = DEFAULT_MAX_SURGE
    return obj
