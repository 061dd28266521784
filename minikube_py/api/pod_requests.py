"""What a pod asks of a node: its resource requests added up as Kubernetes' resource helpers do
(k/k `component-helpers/resource`, `PodRequests`), shared by the scheduler's NodeResourcesFit and
the node agent's admission, which must agree on the arithmetic.
"""

from __future__ import annotations

import math

from minikube_py.api.core import Container, Pod
from minikube_py.api.quantity import parse_quantity

# Amounts of resources as they are added up: cpu in millicores, the rest in whole units.
ResourceAmounts = dict[str, int]
# The requests kube-scheduler assumes for scoring a container that requests nothing
# (k/k pkg/scheduler/util/pod_resources.go): 100m cpu and 200 MiB.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


def resource_amount(resource: str, text: str) -> int:
    value = parse_quantity(text)
    return math.ceil(value * 1000) if resource == "cpu" else math.ceil(value)


def container_requests(container: Container) -> ResourceAmounts:
    """A container's requests; a resource with only a limit requests its limit (as the API
    server's defaulting does in Kubernetes)."""
    resources = container.resources
    if resources is None:
        return {}
    wanted = {**(resources.limits or {}), **(resources.requests or {})}
    amounts: ResourceAmounts = {}
    for resource, text in wanted.items():
        try:
            amounts[resource] = resource_amount(resource, text)
        except ValueError:
            continue  # validation refuses bad quantities; an old stored object counts as 0
    return amounts


def pod_requests(pod: Pod, non_zero: bool = False) -> ResourceAmounts:
    """What a pod needs of a node (`resourcehelper.PodRequests`): its app containers' requests
    added up, and at least the largest init container's, since init containers run one at a time.
    E.g. app containers asking 100m + 200m cpu and an init container asking 500m need 500m.
    With `non_zero`, a container asking no cpu or memory counts as 100m and 200 MiB, as the
    scheduler's scores count it, so ten empty pods weigh more than one."""
    total: ResourceAmounts = {}
    for container in pod.spec.containers:
        requests = container_requests(container)
        if non_zero:
            requests.setdefault("cpu", DEFAULT_MILLI_CPU_REQUEST)
            requests.setdefault("memory", DEFAULT_MEMORY_REQUEST)
        for resource, amount in requests.items():
            total[resource] = total.get(resource, 0) + amount
    for container in pod.spec.init_containers or []:
        for resource, amount in container_requests(container).items():
            total[resource] = max(total.get(resource, 0), amount)
    return total


def amounts_of(resources: dict[str, str] | None) -> ResourceAmounts:
    """A ResourceList (a node's allocatable) as amounts; unreadable quantities are left out."""
    amounts: ResourceAmounts = {}
    for resource, text in (resources or {}).items():
        try:
            amounts[resource] = resource_amount(resource, text)
        except ValueError:
            continue
    return amounts
