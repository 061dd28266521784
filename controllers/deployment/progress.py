"""The Progressing condition and the progress deadline (k/k `pkg/controller/deployment/progress.go`).

While a rollout runs, every sync compares the new status with the stored one: any sign of
progress (more updated, ready or available pods, fewer old ones) refreshes the Progressing
condition's lastUpdateTime; a rollout with no progress for progressDeadlineSeconds gets
Progressing=False ProgressDeadlineExceeded. Nothing else happens on a timeout: Kubernetes only
reports it. Because a stuck rollout produces no events, the sync asks to be requeued for the
moment the deadline would pass instead of relying on a periodic resync.
"""

from __future__ import annotations

from collections.abc import Sequence

from minikube_py.api.apps import Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet
from minikube_py.api.times import parse_time

from controllers.deployment import util
from controllers.deployment.steps import SyncContext
from controllers.deployment.sync import calculate_status, write_status


# The requeue for a deadline check lands one second after the deadline, so that second-precision
# timestamps have certainly passed it (k8s adds a second against clock skew, issue 39785).
DEADLINE_CHECK_SLACK_SECONDS = 1.0


def _replica_set_name_or_deployment(new_replica_set: ReplicaSet | None, deployment: Deployment) -> str:
    if new_replica_set is not None:
        return f'ReplicaSet "{new_replica_set.metadata.name}"'
    return f'Deployment "{deployment.metadata.name}"'


def sync_rollout_status(controller: SyncContext, all_replica_sets: Sequence[ReplicaSet | None],
                        new_replica_set: ReplicaSet | None, deployment: Deployment) -> float | None:
    """Write status with Available, Progressing and ReplicaFailure conditions.

    Returns seconds until the progress deadline should be checked again, or None.
    """
    now = controller.clock.now()
    status = calculate_status(all_replica_sets, new_replica_set, deployment, now)
    if not util.has_progress_deadline(deployment):
        util.remove_condition(status, util.PROGRESSING)

    current = util.get_condition(deployment.status, util.PROGRESSING)
    # A finished rollout that is merely resynced has nothing to estimate.
    already_complete = (
        (status.replicas or 0) == (status.updated_replicas or 0)
        and current is not None
        and current.reason == util.NEW_REPLICA_SET_AVAILABLE_REASON
    )
    subject = _replica_set_name_or_deployment(new_replica_set, deployment)
    if util.has_progress_deadline(deployment) and not already_complete:
        if util.deployment_complete(deployment, status):
            util.set_condition(status, util.new_condition(
                util.PROGRESSING, "True", util.NEW_REPLICA_SET_AVAILABLE_REASON,
                f"{subject} has successfully progressed.", now,
            ))
        elif util.deployment_progressing(deployment, status):
            condition = util.new_condition(
                util.PROGRESSING, "True", util.REPLICA_SET_UPDATED_REASON, f"{subject} is progressing.", now
            )
            # Unlike other conditions, Progressing is rewritten on every sign of progress even when
            # the reason stays the same: its lastUpdateTime is the deadline clock.
            if current is not None:
                if current.status == "True":
                    condition.last_transition_time = current.last_transition_time
                util.remove_condition(status, util.PROGRESSING)
            util.set_condition(status, condition)
        elif util.deployment_timed_out(deployment, status, now):
            util.set_condition(status, util.new_condition(
                util.PROGRESSING, "False", util.TIMED_OUT_REASON, f"{subject} has timed out progressing.", now
            ))

    failures = replica_failure_conditions(all_replica_sets, new_replica_set)
    if failures:
        util.set_condition(status, failures[0])
    else:
        util.remove_condition(status, util.REPLICA_FAILURE)

    if status.to_dict() != deployment.status.to_dict():
        deployment.status = status
        write_status(controller, deployment)
    return requeue_for_deadline(deployment, status, now)


def replica_failure_conditions(all_replica_sets: Sequence[ReplicaSet | None], new_replica_set: ReplicaSet | None) -> list[DeploymentCondition]:
    """ReplicaFailure conditions of the ReplicaSets as Deployment conditions, the new RS's first."""
    def failures(replica_sets: Sequence[ReplicaSet | None]) -> list[DeploymentCondition]:
        return [
            util.replica_set_condition_to_deployment(condition)
            for replica_set in replica_sets if replica_set is not None
            for condition in replica_set.status.conditions or []
            if condition.type == util.REPLICA_FAILURE
        ]

    return failures([new_replica_set]) or failures(all_replica_sets)


def requeue_for_deadline(deployment: Deployment, status: DeploymentStatus, now: float) -> float | None:
    """Seconds until the rollout may have passed its deadline, or None when there is nothing to watch.

    Worked example: Progressing last updated at 00:00:00, deadline 600 s, now 00:03:00:
    00:00:00 + 10 min - 00:03:00 = 7 min; requeue after 7 min + 1 s.
    """
    condition = util.get_condition(status, util.PROGRESSING)
    if not util.has_progress_deadline(deployment) or condition is None:
        return None
    if util.deployment_complete(deployment, status) or condition.reason in (
        util.TIMED_OUT_REASON, util.NEW_REPLICA_SET_AVAILABLE_REASON
    ):
        return None
    if not condition.last_update_time:
        return None
    remaining = parse_time(condition.last_update_time) + deployment.spec.progress_deadline_seconds - now
    return max(remaining, 0.0) + DEADLINE_CHECK_SLACK_SECONDS
