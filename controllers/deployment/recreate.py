"""The Recreate strategy (k/k `pkg/controller/deployment/recreate.go`).

All old pods go before any new one starts: scale every old ReplicaSet to 0, wait until no old
ReplicaSet reports pods and no pod they own is still running (terminating pods count, since
their processes may still hold ports and files), and only then create the new ReplicaSet at
full size. The guarantee holds for upgrades; a pod deleted by hand is replaced by its
ReplicaSet at once.
"""

from __future__ import annotations


from minikube_py.api.core import Pod
from minikube_py.api.apps import Deployment, ReplicaSet

from controllers.deployment import util
from controllers.deployment.steps import SyncContext
from controllers.deployment.progress import sync_rollout_status
from controllers.deployment.sync import (
    cleanup_deployment,
    get_all_replica_sets_and_sync_revision,
    scale_replica_set_and_record_event,
)



def rollout_recreate(controller: SyncContext, deployment: Deployment, replica_sets: list[ReplicaSet],
                     pods_by_replica_set_uid: dict[str, list[Pod]]) -> float | None:
    """One Recreate step; returns seconds until a progress-deadline check, or None."""
    # The new ReplicaSet is not created yet: it must not start pods before the old ones are gone.
    new_replica_set, old_replica_sets = get_all_replica_sets_and_sync_revision(
        controller, deployment, replica_sets, create_if_missing=False
    )
    all_replica_sets = [*old_replica_sets, new_replica_set]

    scaled_down = False
    for old in util.filter_active(old_replica_sets):
        scaled, _ = scale_replica_set_and_record_event(controller, old, 0, deployment)
        scaled_down = scaled_down or scaled
    if scaled_down:
        return sync_rollout_status(controller, all_replica_sets, new_replica_set, deployment)

    if old_pods_running(new_replica_set, old_replica_sets, pods_by_replica_set_uid):
        return sync_rollout_status(controller, all_replica_sets, new_replica_set, deployment)

    if new_replica_set is None:
        new_replica_set, old_replica_sets = get_all_replica_sets_and_sync_revision(
            controller, deployment, replica_sets, create_if_missing=True
        )
        all_replica_sets = [*old_replica_sets, new_replica_set]
        assert new_replica_set is not None  # create_if_missing

    scale_replica_set_and_record_event(controller, new_replica_set, deployment.spec.replicas, deployment)

    if util.deployment_complete(deployment, deployment.status):
        cleanup_deployment(controller, old_replica_sets, deployment)
    return sync_rollout_status(controller, all_replica_sets, new_replica_set, deployment)


def old_pods_running(new_replica_set: ReplicaSet | None, old_replica_sets: list[ReplicaSet],
                     pods_by_replica_set_uid: dict[str, list[Pod]]) -> bool:
    """Some old ReplicaSet still reports pods, or owns a pod not yet Succeeded or Failed.

    A pod in phase Unknown counts as running: nobody can say its processes are gone.
    """
    if util.status_replicas(old_replica_sets) > 0:
        return True
    new_uid = new_replica_set.metadata.uid if new_replica_set is not None else None
    for replica_set_uid, pods in pods_by_replica_set_uid.items():
        if replica_set_uid == new_uid:
            continue
        if any(pod.status.phase not in ("Succeeded", "Failed") for pod in pods):
            return True
    return False
