"""Kubelet-side admission: a pod bound to this node is run only if the node has room for it.

The scheduler fits pods into a node's allocatable, but a pod created with `spec.nodeName` already
set never passes through it. Kubelet therefore checks every new pod itself (k/k
`pkg/kubelet/lifecycle/predicate.go`, `canAdmitPod`) against the pods it has already admitted:
one more pod within `pods`, and the pod's requests for cpu, memory, ephemeral-storage and the
node's extended resources within what is left. A pod that does not fit is never started: it is
set `Failed` with reason `OutOf<resource>` (`OutOfpods`, `OutOfcpu`, `OutOfmemory`) and the message
`Pod was rejected: Node didn't have enough resource: cpu, requested: 2000, used: 500, capacity:
1000` (cpu in millicores, memory in bytes), with a Warning event of that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from minikube_py.api.core import Pod
from minikube_py.api.pod_requests import ResourceAmounts, amounts_of, pod_requests

# kubelet checks these first and in this order, then the extended resources the node has.
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")


@dataclass(frozen=True)
class Rejection:
    reason: str  # OutOfcpu
    message: str  # Node didn't have enough resource: cpu, requested: ..., used: ..., capacity: ...

    @property
    def status_message(self) -> str:
        return f"Pod was rejected: {self.message}"


def _insufficient(resource: str, requested: int, used: int, capacity: int) -> Rejection:
    return Rejection(f"OutOf{resource}", f"Node didn't have enough resource: {resource}, requested: {requested}, "
                                         f"used: {used}, capacity: {capacity}")


def admit(pod: Pod, allocatable: dict[str, str], admitted: list[ResourceAmounts]) -> Rejection | None:
    """None when `pod` fits beside the pods already admitted (their requests, `pod_requests` of
    each, added up once per pod by the caller: at 1,000 pods, re-adding every pod's containers for
    each new pod was a tenth of the agent's CPU); else the first resource short, as kubelet
    reports only the first failed predicate."""
    capacity = amounts_of(allocatable)
    if len(admitted) + 1 > capacity.get("pods", 0):
        return _insufficient("pods", 1, len(admitted), capacity.get("pods", 0))
    used: ResourceAmounts = {}
    for requests_of_other in admitted:
        for resource, amount in requests_of_other.items():
            used[resource] = used.get(resource, 0) + amount
    requests = pod_requests(pod)
    extended = sorted(resource for resource in requests if resource not in STANDARD_RESOURCES and resource in capacity)
    for resource in (*STANDARD_RESOURCES, *extended):
        amount = requests.get(resource, 0)
        if amount > 0 and amount + used.get(resource, 0) > capacity.get(resource, 0):
            return _insufficient(resource, amount, used.get(resource, 0), capacity.get(resource, 0))
    return None
