"""A pod's quality-of-service class, which the API server stores in `status.qosClass` on create.

Kubernetes' rule (k/k `pkg/apis/core/helper/qos` ComputePodQOS), over every container and init
container, counting only cpu and memory and only quantities above zero (requests were already
defaulted from limits):

- BestEffort: no container requests or limits anything;
- Guaranteed: every container has both a cpu and a memory limit, and the pod's summed requests
  equal its summed limits for each of them;
- Burstable: everything else.
"""

from __future__ import annotations

from decimal import Decimal

from minikube_py.api.core import PodSpec
from minikube_py.api.quantity import parse_quantity

GUARANTEED, BURSTABLE, BEST_EFFORT = "Guaranteed", "Burstable", "BestEffort"
QOS_RESOURCES = ("cpu", "memory")


def _positive(quantities: dict[str, str] | None) -> dict[str, Decimal]:
    found = {}
    for name, text in (quantities or {}).items():
        if name not in QOS_RESOURCES:
            continue
        try:
            value = parse_quantity(text)
        except ValueError:
            continue  # validation reports it
        if value > 0:
            found[name] = value
    return found


def pod_qos_class(spec: PodSpec) -> str:
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for container in [*spec.containers, *(spec.init_containers or [])]:
        resources = container.resources
        container_requests = _positive(resources.requests if resources is not None else None)
        container_limits = _positive(resources.limits if resources is not None else None)
        for name, value in container_requests.items():
            requests[name] = requests.get(name, Decimal(0)) + value
        for name, value in container_limits.items():
            limits[name] = limits.get(name, Decimal(0)) + value
        if set(container_limits) != set(QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return BEST_EFFORT
    if guaranteed and requests == limits:
        return GUARANTEED
    return BURSTABLE
