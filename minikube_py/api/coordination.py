"""`coordination.k8s.io/v1` Lease: who holds a named lock and until when.

kube-controller-manager and kube-scheduler elect their leader through one (`--leader-elect`), as
the daemon does (client/leaderelection.py): the holder renews `renewTime` every few seconds and
the others take the Lease over once `leaseDurationSeconds` passed without a renewal. Times are
MicroTime strings (`2026-12-03T12:00:00.000000Z`).
"""

from __future__ import annotations

from pydantic import Field

from minikube_py.api.meta import Int32, ObjectMeta, WireModel


class LeaseSpec(WireModel):
    holder_identity: str | None = None
    lease_duration_seconds: Int32 | None = None
    acquire_time: str | None = None
    renew_time: str | None = None
    lease_transitions: Int32 | None = None


class Lease(WireModel):
    api_version: str = "coordination.k8s.io/v1"
    kind: str = "Lease"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LeaseSpec = Field(default_factory=LeaseSpec)


def validate_lease(lease: Lease) -> list[tuple[str, str]]:
    """kube-apiserver's Lease validation: durations and transitions not negative, and a
    duration, when given, above zero."""
    problems = []
    duration = lease.spec.lease_duration_seconds
    if duration is not None and duration <= 0:
        problems.append(("spec.leaseDurationSeconds", f"Invalid value: {duration}: must be greater than 0"))
    transitions = lease.spec.lease_transitions
    if transitions is not None and transitions < 0:
        problems.append(("spec.leaseTransitions", f"Invalid value: {transitions}: must be greater than or equal to 0"))
    return problems
