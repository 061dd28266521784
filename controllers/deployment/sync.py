"""Shared steps of a Deployment sync (k/k `pkg/controller/deployment/sync.go`).

Every path of `DeploymentController.sync` goes through here: finding (and if asked, creating)
the new ReplicaSet and keeping revisions in step, scaling one ReplicaSet with its annotations
and event, proportional scaling when the Deployment is resized mid-rollout or while paused,
deleting ReplicaSets beyond revisionHistoryLimit, and computing and writing the status. The
strategy modules (`rolling`, `recreate`) and `rollback` call these; `progress` adds the
Progressing condition on top of `calculate_status`.

The functions take the controller first (for its client, clock and event recorder) and a
Deployment that is the sync's own deep copy: they update it in place as they write, so later
steps of the same sync see what earlier ones wrote. ReplicaSets from the cache are never
changed in place; writes return the server's copy.
"""

from __future__ import annotations

from collections.abc import Sequence

from minikube_py.api import errors
from minikube_py.api.apps import Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec
from minikube_py.api.meta import LabelSelector, ObjectMeta
from minikube_py.client.events import NORMAL, WARNING

from controllers.common import get_controller_of, new_controller_ref
from controllers.deployment import util
from controllers.deployment.steps import SyncContext


SCALING_REPLICA_SET = "ScalingReplicaSet"


def write_status(controller: SyncContext, deployment: Deployment) -> None:
    """Write `deployment.status` and its revision annotation; keep the copy's resourceVersion current.

    As in Kubernetes, the revision annotation travels with the status write, so it bumps no generation.
    """
    written = controller.client.replace_status(deployment)
    deployment.metadata.resource_version = written.metadata.resource_version
    deployment.metadata.generation = written.metadata.generation


def sync_status_only(controller: SyncContext, deployment: Deployment, replica_sets: list[ReplicaSet]) -> None:
    """A Deployment being deleted: report status, change nothing else."""
    new_replica_set, old_replica_sets = get_all_replica_sets_and_sync_revision(
        controller, deployment, replica_sets, create_if_missing=False
    )
    sync_deployment_status(controller, [*old_replica_sets, new_replica_set], new_replica_set, deployment)


def sync(controller: SyncContext, deployment: Deployment, replica_sets: list[ReplicaSet]) -> None:
    """Paused or resized: scale proportionally, clean history when paused, write status; no rollout."""
    new_replica_set, old_replica_sets = get_all_replica_sets_and_sync_revision(
        controller, deployment, replica_sets, create_if_missing=False
    )
    scale(controller, deployment, new_replica_set, old_replica_sets)
    if deployment.spec.paused and rollback_to(deployment) is None:
        cleanup_deployment(controller, old_replica_sets, deployment)
    sync_deployment_status(controller, [*old_replica_sets, new_replica_set], new_replica_set, deployment)


def rollback_to(deployment: Deployment) -> int | None:
    """The legacy `deprecated.deployment.rollback.to` revision, or None (also when not a number)."""
    text = (deployment.metadata.annotations or {}).get(util.ROLLBACK_TO_ANNOTATION)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def check_paused_conditions(controller: SyncContext, deployment: Deployment) -> None:
    """Progressing=Unknown DeploymentPaused / DeploymentResumed, so a long pause never times out."""
    if not util.has_progress_deadline(deployment):
        return
    condition = util.get_condition(deployment.status, util.PROGRESSING)
    if condition is not None and condition.reason == util.TIMED_OUT_REASON:
        return  # a reported timeout is not hidden by pausing
    paused_condition_exists = condition is not None and condition.reason == util.PAUSED_REASON
    now = controller.clock.now()
    if deployment.spec.paused and not paused_condition_exists:
        util.set_condition(
            deployment.status,
            util.new_condition(util.PROGRESSING, "Unknown", util.PAUSED_REASON, "Deployment is paused", now),
        )
    elif not deployment.spec.paused and paused_condition_exists:
        util.set_condition(
            deployment.status,
            util.new_condition(util.PROGRESSING, "Unknown", util.RESUMED_REASON, "Deployment is resumed", now),
        )
    else:
        return
    write_status(controller, deployment)


def get_all_replica_sets_and_sync_revision(
    controller: SyncContext, deployment: Deployment, replica_sets: list[ReplicaSet], create_if_missing: bool
) -> tuple[ReplicaSet | None, list[ReplicaSet]]:
    """(new ReplicaSet or None, old ReplicaSets), with the new one's revision brought up to date;
    with `create_if_missing` the new one is never None."""
    old_replica_sets = util.find_old_replica_sets(deployment, replica_sets)
    new_replica_set = get_new_replica_set(controller, deployment, replica_sets, old_replica_sets, create_if_missing)
    return new_replica_set, old_replica_sets


def get_new_replica_set(
    controller: SyncContext,
    deployment: Deployment,
    replica_sets: list[ReplicaSet],
    old_replica_sets: list[ReplicaSet],
    create_if_missing: bool,
) -> ReplicaSet | None:
    """The ReplicaSet running the Deployment's current template, creating it if asked.

    An existing one gets revision = max(old revisions) + 1 (if that is higher) and the
    Deployment's annotations; the Deployment's revision annotation follows the ReplicaSet's.
    """
    existing = util.find_new_replica_set(deployment, replica_sets)
    new_revision = util.max_revision(old_replica_sets) + 1

    if existing is not None:
        # A copy whose metadata and spec may be set without touching the cached object (only their
        # annotations and minReadySeconds change here): a deep copy of the whole template on every
        # sync cost more than the rest of the step.
        replica_set = existing.model_copy(update={"metadata": existing.metadata.model_copy(),
                                                  "spec": existing.spec.model_copy()})
        annotations_changed = util.set_new_replica_set_annotations(deployment, replica_set, new_revision, exists=True)
        if annotations_changed or replica_set.spec.min_ready_seconds != deployment.spec.min_ready_seconds:
            replica_set.spec.min_ready_seconds = deployment.spec.min_ready_seconds
            written = controller.client.replace(replica_set)
            # Later steps of this sync (the scaling check, then the rollout) look again: they
            # must see the written copy, or their own writes would conflict with this one.
            replica_sets[replica_sets.index(existing)] = written
            return written
        needs_update = util.set_deployment_revision(
            deployment, (replica_set.metadata.annotations or {}).get(util.REVISION_ANNOTATION, "")
        )
        if util.has_progress_deadline(deployment) and util.get_condition(deployment.status, util.PROGRESSING) is None:
            util.set_condition(deployment.status, util.new_condition(
                util.PROGRESSING, "True", util.FOUND_NEW_REPLICA_SET_REASON,
                f'Found new replica set "{replica_set.metadata.name}"', controller.clock.now(),
            ))
            needs_update = True
        if needs_update:
            write_status(controller, deployment)
        return replica_set

    if not create_if_missing:
        return None
    return _create_new_replica_set(controller, deployment, old_replica_sets, new_revision)


def _create_new_replica_set(
    controller: SyncContext, deployment: Deployment, old_replica_sets: list[ReplicaSet], new_revision: int
) -> ReplicaSet:
    template = deployment.spec.template.model_copy(deep=True)
    template_hash = util.compute_hash(deployment.spec.template, deployment.status.collision_count)
    template.metadata.labels = {**(template.metadata.labels or {}), util.POD_TEMPLATE_HASH_LABEL: template_hash}
    selector = (deployment.spec.selector or LabelSelector()).model_copy(deep=True)
    selector.match_labels = {**(selector.match_labels or {}), util.POD_TEMPLATE_HASH_LABEL: template_hash}
    new_replica_set = ReplicaSet(
        metadata=ObjectMeta(
            name=f"{deployment.metadata.name}-{template_hash}",
            namespace=deployment.metadata.namespace,
            owner_references=[new_controller_ref(deployment)],
            labels=dict(template.metadata.labels),
        ),
        spec=ReplicaSetSpec(
            replicas=0,
            min_ready_seconds=deployment.spec.min_ready_seconds,
            selector=selector,
            template=template,
        ),
    )
    replicas = util.new_replica_set_new_replicas(deployment, [*old_replica_sets, new_replica_set], new_replica_set)
    new_replica_set.spec.replicas = replicas
    util.set_new_replica_set_annotations(deployment, new_replica_set, new_revision, exists=False)

    already_existed = False
    try:
        created = controller.client.create(new_replica_set)
    except errors.AlreadyExists:
        already_existed = True
        created = _existing_replica_set_or_collision(controller, deployment, new_replica_set)
    except errors.ApiError as error:
        message = f'Failed to create new replica set "{new_replica_set.metadata.name}": {error.message}'
        if util.has_progress_deadline(deployment):
            util.set_condition(deployment.status, util.new_condition(
                util.PROGRESSING, "False", util.FAILED_REPLICA_SET_CREATE_REASON, message, controller.clock.now()
            ))
            try:
                write_status(controller, deployment)
            except errors.ApiError:
                pass  # the create failure is the problem worth reporting; it is raised below
        controller.event(deployment, WARNING, util.FAILED_REPLICA_SET_CREATE_REASON, message)
        raise

    if not already_existed and replicas > 0:
        controller.event(deployment, NORMAL, SCALING_REPLICA_SET,
                         f"Scaled up replica set {created.metadata.name} to {replicas}")
    needs_update = util.set_deployment_revision(deployment, str(new_revision))
    if not already_existed and util.has_progress_deadline(deployment):
        util.set_condition(deployment.status, util.new_condition(
            util.PROGRESSING, "True", util.NEW_REPLICA_SET_CREATED_REASON,
            f'Created new replica set "{created.metadata.name}"', controller.clock.now(),
        ))
        needs_update = True
    if needs_update:
        write_status(controller, deployment)
    return created


def _existing_replica_set_or_collision(controller: SyncContext, deployment: Deployment, wanted: ReplicaSet) -> ReplicaSet:
    """Create said AlreadyExists: use that ReplicaSet if it is ours with our template, else
    bump status.collisionCount (so the next hash, and name, differ) and fail this sync."""
    namespace, name = wanted.metadata.namespace, wanted.metadata.name or ""
    existing = controller.client.get("replicasets", name, namespace=namespace)
    reference = get_controller_of(existing)
    if (reference is not None and reference.uid == deployment.metadata.uid
            and util.equal_ignore_hash(deployment.spec.template, existing.spec.template)):
        return existing
    deployment.status.collision_count = (deployment.status.collision_count or 0) + 1
    write_status(controller, deployment)
    raise errors.AlreadyExists(
        f"deployment/{deployment.metadata.name}: replica set {name} already exists with a different pod "
        f"template (hash collision); status.collisionCount is now {deployment.status.collision_count} "
        "and the next sync uses a new name"
    )


# -- scaling ----------------------------------------------------------------------------------


def scale_replica_set_and_record_event(
    controller: SyncContext, replica_set: ReplicaSet, new_scale: int, deployment: Deployment
) -> tuple[bool, ReplicaSet]:
    """Resize one ReplicaSet if its size differs; (whether it was resized, the current copy)."""
    if replica_set.spec.replicas == new_scale:
        return False, replica_set
    direction = "up" if replica_set.spec.replicas < new_scale else "down"
    return scale_replica_set(controller, replica_set, new_scale, deployment, direction)


def scale_replica_set(
    controller: SyncContext, replica_set: ReplicaSet, new_scale: int, deployment: Deployment, direction: str
) -> tuple[bool, ReplicaSet]:
    """Write the size and the desired/max-replicas annotations; event "Scaled <dir> replica set"."""
    desired = deployment.spec.replicas
    maximum = desired + util.max_surge(deployment)
    size_changes = replica_set.spec.replicas != new_scale
    if not size_changes and not util.replicas_annotations_need_update(replica_set, desired, maximum):
        return False, replica_set
    old_scale = replica_set.spec.replicas
    updated = replica_set.model_copy(deep=True)
    updated.spec.replicas = new_scale
    util.set_replicas_annotations(updated, desired, maximum)
    written = controller.client.replace(updated)
    if size_changes:
        controller.event(deployment, NORMAL, SCALING_REPLICA_SET,
                         f"Scaled {direction} replica set {written.metadata.name} to {new_scale} from {old_scale}")
    return size_changes, written


def is_scaling_event(controller: SyncContext, deployment: Deployment, replica_sets: list[ReplicaSet]) -> bool:
    """spec.replicas differs from what some active ReplicaSet was last sized for."""
    new_replica_set, old_replica_sets = get_all_replica_sets_and_sync_revision(
        controller, deployment, replica_sets, create_if_missing=False
    )
    for replica_set in util.filter_active([*old_replica_sets, new_replica_set]):
        desired = util.desired_replicas_annotation(replica_set)
        if desired is not None and desired != deployment.spec.replicas:
            return True
    return False


def scale(controller: SyncContext, deployment: Deployment, new_replica_set: ReplicaSet | None,
          old_replica_sets: list[ReplicaSet]) -> None:
    """Resize the Deployment's ReplicaSets to spec.replicas (k/k `scale`).

    One active ReplicaSet (or none: then the newest) takes the whole size. A saturated new one
    means old ones go to 0. Otherwise, during a rolling update, sizes change in proportion
    (`util.proportional_sizes`).

    The one active ReplicaSet is written even when it already has the right size, if its
    desired-replicas annotation is stale. Kubernetes returns early there, and so deadlocks: with
    maxSurge 0 an old RS shrunk 3 -> 2 mid-rollout (annotated for 3) and the Deployment scaled to
    2 is a "scaling event" on every sync that never writes anything, so the rollout never resumes
    (kubernetes/kubernetes PR 138036). `scale_replica_set` writes only what is stale.
    """
    only_one = util.find_active_or_latest(new_replica_set, old_replica_sets)
    if only_one is not None:
        direction = "up" if only_one.spec.replicas < deployment.spec.replicas else "down"
        scale_replica_set(controller, only_one, deployment.spec.replicas, deployment, direction)
        return
    if util.is_saturated(deployment, new_replica_set):
        for old in util.filter_active(old_replica_sets):
            scale_replica_set_and_record_event(controller, old, 0, deployment)
        return
    if not util.is_rolling_update(deployment):
        return
    for replica_set, size in util.proportional_sizes(deployment, util.filter_active([*old_replica_sets, new_replica_set])):
        direction = "up" if size > replica_set.spec.replicas else "down"
        scale_replica_set(controller, replica_set, size, deployment, direction)


# -- history and status -----------------------------------------------------------------------


def cleanup_deployment(controller: SyncContext, old_replica_sets: list[ReplicaSet], deployment: Deployment) -> None:
    """Delete the oldest empty ReplicaSets beyond revisionHistoryLimit.

    Skips any that still has pods, wants pods, or whose latest spec its controller has not yet
    seen (it might be about to create pods).
    """
    if not util.has_revision_history_limit(deployment):
        return
    cleanable = [rs for rs in old_replica_sets if rs is not None and rs.metadata.deletion_timestamp is None]
    excess = len(cleanable) - deployment.spec.revision_history_limit
    if excess <= 0:
        return
    for replica_set in util.by_revision(cleanable)[:excess]:
        if ((replica_set.status.replicas or 0) != 0 or replica_set.spec.replicas != 0
                or (replica_set.metadata.generation or 0) > (replica_set.status.observed_generation or 0)):
            continue
        try:
            controller.client.delete("replicasets", replica_set.metadata.name or "", namespace=replica_set.metadata.namespace)
        except errors.NotFound:
            pass


def calculate_status(
    all_replica_sets: Sequence[ReplicaSet | None], new_replica_set: ReplicaSet | None, deployment: Deployment, now: float
) -> DeploymentStatus:
    """The Deployment's status from its ReplicaSets' (k/k `calculateStatus`), plus the Available condition.

    Counts of 0 are left out, as Kubernetes' `omitempty` does on the wire.
    """
    available = util.available_replicas(all_replica_sets)
    unavailable = max(util.spec_replicas(all_replica_sets) - available, 0)
    status = DeploymentStatus(
        observed_generation=deployment.metadata.generation,
        replicas=util.status_replicas(all_replica_sets) or None,
        updated_replicas=util.status_replicas([new_replica_set]) or None,
        ready_replicas=util.ready_replicas(all_replica_sets) or None,
        available_replicas=available or None,
        unavailable_replicas=unavailable or None,
        collision_count=deployment.status.collision_count,
        conditions=[condition.model_copy() for condition in deployment.status.conditions or []] or None,
    )
    if available >= deployment.spec.replicas - util.max_unavailable(deployment):
        condition = util.new_condition(util.AVAILABLE, "True", util.MINIMUM_REPLICAS_AVAILABLE,
                                       "Deployment has minimum availability.", now)
    else:
        condition = util.new_condition(util.AVAILABLE, "False", util.MINIMUM_REPLICAS_UNAVAILABLE,
                                       "Deployment does not have minimum availability.", now)
    util.set_condition(status, condition)
    return status


def sync_deployment_status(controller: SyncContext, all_replica_sets: Sequence[ReplicaSet | None],
                           new_replica_set: ReplicaSet | None, deployment: Deployment) -> None:
    """Write the calculated status if it differs from the stored one."""
    status = calculate_status(all_replica_sets, new_replica_set, deployment, controller.clock.now())
    if status.to_dict() == deployment.status.to_dict():
        return
    deployment.status = status
    write_status(controller, deployment)
