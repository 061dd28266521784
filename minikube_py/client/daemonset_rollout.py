"""What `rollout status` says of a DaemonSet, as kubectl computes it client-side.

kubectl's `DaemonSetStatusViewer`, word for word, so scripts that read it keep working. A
DaemonSet's history, undo and the revision view are those of any workload kept in
ControllerRevisions (`client/statefulset_rollout.py`).
"""

from __future__ import annotations

from minikube_py.api.apps import DaemonSet


def status_message(daemon_set: DaemonSet) -> tuple[str, bool, str | None]:
    """(message, done, error) for one observation (`DaemonSetStatusViewer.Status`)."""
    if daemon_set.spec.update_strategy.type != "RollingUpdate":
        return "", True, "rollout status is only available for RollingUpdate strategy type"
    status, name = daemon_set.status, daemon_set.metadata.name
    if (daemon_set.metadata.generation or 0) > (status.observed_generation or 0):
        return "Waiting for daemon set spec update to be observed...\n", False, None
    desired, updated = status.desired_number_scheduled, status.updated_number_scheduled or 0
    if updated < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have '
                f"been updated...\n"), False, None
    available = status.number_available or 0
    if available < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are '
                f"available...\n"), False, None
    return f'daemon set "{name}" successfully rolled out\n', True, None
