"""The RollingUpdate strategy (k/k `pkg/controller/deployment/rolling.go`).

Each sync takes at most one step: grow the new ReplicaSet as far as maxSurge allows, or, if it
cannot grow, shrink old ReplicaSets as far as maxUnavailable allows, then report progress. The
next step happens when the ReplicaSet controller's status shows pods ready or gone, which
arrives as an event and another sync. For replicas 3 with 25%/25% (surge 1, unavailable 0) the
steps are: new 1, old 2, new 2, old 1, new 3, old 0.

`scale_down_plan_for_unhealthy` and `scale_down_plan_for_rolling_update` are the arithmetic of
the old-ReplicaSet step as pure functions; `rollout_rolling` applies them.
"""

from __future__ import annotations


from minikube_py.api.apps import Deployment, ReplicaSet

from controllers.deployment import util
from controllers.deployment.steps import SyncContext
from controllers.deployment.progress import sync_rollout_status
from controllers.deployment.sync import (
    cleanup_deployment,
    get_all_replica_sets_and_sync_revision,
    scale_replica_set_and_record_event,
)



def rollout_rolling(controller: SyncContext, deployment: Deployment, replica_sets: list[ReplicaSet]) -> float | None:
    """One rolling-update step; returns seconds until a progress-deadline check, or None."""
    new_replica_set, old_replica_sets = get_all_replica_sets_and_sync_revision(
        controller, deployment, replica_sets, create_if_missing=True
    )
    assert new_replica_set is not None  # create_if_missing
    all_replica_sets = [*old_replica_sets, new_replica_set]

    if reconcile_new_replica_set(controller, all_replica_sets, new_replica_set, deployment):
        return sync_rollout_status(controller, all_replica_sets, new_replica_set, deployment)

    if reconcile_old_replica_sets(controller, all_replica_sets, util.filter_active(old_replica_sets),
                                  new_replica_set, deployment):
        return sync_rollout_status(controller, all_replica_sets, new_replica_set, deployment)

    if util.deployment_complete(deployment, deployment.status):
        cleanup_deployment(controller, old_replica_sets, deployment)
    return sync_rollout_status(controller, all_replica_sets, new_replica_set, deployment)


def reconcile_new_replica_set(controller: SyncContext, all_replica_sets: list[ReplicaSet],
                              new_replica_set: ReplicaSet, deployment: Deployment) -> bool:
    """Grow the new ReplicaSet within maxSurge (or shrink it to spec.replicas); True if it was resized."""
    desired = deployment.spec.replicas
    if new_replica_set.spec.replicas == desired:
        return False
    if new_replica_set.spec.replicas > desired:
        scaled, _ = scale_replica_set_and_record_event(controller, new_replica_set, desired, deployment)
        return scaled
    target = util.new_replica_set_new_replicas(deployment, all_replica_sets, new_replica_set)
    scaled, _ = scale_replica_set_and_record_event(controller, new_replica_set, target, deployment)
    return scaled


def max_scaled_down(deployment: Deployment, all_replica_sets: list[ReplicaSet], new_replica_set: ReplicaSet) -> int:
    """How many old replicas may go this step without breaking maxUnavailable.

    maxScaledDown = allPods - minAvailable - newRSUnavailable. Worked example: replicas 10,
    maxUnavailable 2, maxSurge 3; old at 8 and new at 5 (13 pods), the new pods crash-loop so
    none is available: 13 - 8 - 5 = 0, and old pods stay even if a node loses one of them.
    Roll back to the old template (which is now the "new" RS, 8 pods, 1 unavailable) and it
    becomes 13 - 8 - 1 = 4: four crash-looping pods may go. Counting only the new RS's
    unavailable pods is what keeps a broken new template from eating the old availability.
    """
    all_pods = util.spec_replicas(all_replica_sets)
    minimum_available = util.min_available(deployment)
    new_unavailable = new_replica_set.spec.replicas - (new_replica_set.status.available_replicas or 0)
    return all_pods - minimum_available - new_unavailable


def scale_down_plan_for_unhealthy(old_replica_sets: list[ReplicaSet], limit: int) -> list[tuple[ReplicaSet, int]]:
    """(old RS, new size) that drop unavailable old replicas first, oldest RS first, at most `limit` in total.

    Scaling an RS down makes its controller delete not-ready pods first, so this removes
    only pods that were not serving anyway: old at 4 with 1 available, limit 2 -> old to 2.
    """
    plan = []
    removed = 0
    for replica_set in util.by_creation(old_replica_sets):
        if removed >= limit:
            break
        replicas = replica_set.spec.replicas
        unhealthy = replicas - (replica_set.status.available_replicas or 0)
        if replicas == 0 or unhealthy <= 0:
            continue
        count = min(limit - removed, unhealthy)
        plan.append((replica_set, replicas - count))
        removed += count
    return plan


def scale_down_plan_for_rolling_update(deployment: Deployment, all_replica_sets: list[ReplicaSet],
                                       old_replica_sets: list[ReplicaSet]) -> list[tuple[ReplicaSet, int]]:
    """(old RS, new size) that remove available old replicas down to minAvailable, oldest RS first.

    Worked example: replicas 3, maxUnavailable 0 (minAvailable 3); old at 3 available and new at
    1 available = 4 available -> 4 - 3 = 1 old replica may go: old 3 -> 2.
    """
    minimum_available = util.min_available(deployment)
    available = util.available_replicas(all_replica_sets)
    if available <= minimum_available:
        return []
    to_remove = available - minimum_available
    plan = []
    removed = 0
    for replica_set in util.by_creation(old_replica_sets):
        if removed >= to_remove:
            break
        if replica_set.spec.replicas == 0:
            continue
        count = min(replica_set.spec.replicas, to_remove - removed)
        plan.append((replica_set, replica_set.spec.replicas - count))
        removed += count
    return plan


def reconcile_old_replica_sets(controller: SyncContext, all_replica_sets: list[ReplicaSet],
                               old_replica_sets: list[ReplicaSet], new_replica_set: ReplicaSet, deployment: Deployment) -> bool:
    """Shrink old ReplicaSets as far as availability allows; True if any was resized."""
    if util.spec_replicas(old_replica_sets) == 0:
        return False
    limit = max_scaled_down(deployment, all_replica_sets, new_replica_set)
    if limit <= 0:
        return False

    scaled_down = 0
    current = {replica_set.metadata.uid: replica_set for replica_set in old_replica_sets}
    for replica_set, size in scale_down_plan_for_unhealthy(old_replica_sets, limit):
        scaled_down += replica_set.spec.replicas - size
        _, current[replica_set.metadata.uid] = scale_replica_set_and_record_event(
            controller, replica_set, size, deployment
        )

    old_replica_sets = list(current.values())
    for replica_set, size in scale_down_plan_for_rolling_update(
        deployment, [*old_replica_sets, new_replica_set], old_replica_sets
    ):
        scaled_down += replica_set.spec.replicas - size
        scale_replica_set_and_record_event(controller, replica_set, size, deployment)
    return scaled_down > 0
