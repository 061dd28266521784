"""The legacy server-side rollback (k/k `pkg/controller/deployment/rollback.go`).

Old clients asked for a rollback by setting the annotation `deprecated.deployment.rollback.to`
to a revision (0: the previous one). The controller copies that revision's pod template and
annotations into the Deployment, records an event, and removes the annotation; the ordinary
rollout then finds the old ReplicaSet as the new one and bumps its revision. Modern `kubectl
rollout undo` does the same client-side (`rollout.find_rollback_target`), so this path only
serves manifests and scripts that still set the annotation.
"""

from __future__ import annotations


from minikube_py.api.apps import Deployment, ReplicaSet
from minikube_py.client.events import NORMAL, WARNING

from controllers.deployment import util
from controllers.deployment.steps import SyncContext
from controllers.deployment.sync import get_all_replica_sets_and_sync_revision, rollback_to



def rollback(controller: SyncContext, deployment: Deployment, replica_sets: list[ReplicaSet]) -> None:
    """Roll the template back to the requested revision, or give up with a Warning event."""
    new_replica_set, old_replica_sets = get_all_replica_sets_and_sync_revision(
        controller, deployment, replica_sets, create_if_missing=True
    )
    all_replica_sets = [*old_replica_sets, new_replica_set]
    revision = rollback_to(deployment)
    if revision == 0:
        revision = util.last_revision(all_replica_sets)
        if revision == 0:
            controller.event(deployment, WARNING, util.ROLLBACK_REVISION_NOT_FOUND, "Unable to find last revision.")
            _clear_rollback_to(controller, deployment)
            return
    for replica_set in all_replica_sets:
        if replica_set is None:
            continue
        try:
            if util.revision_of(replica_set) != revision:
                continue
        except ValueError:
            continue
        if _rollback_to_template(controller, deployment, replica_set):
            controller.event(deployment, NORMAL, util.ROLLBACK_DONE,
                             f'Rolled back deployment "{deployment.metadata.name}" to revision {revision}')
        return
    controller.event(deployment, WARNING, util.ROLLBACK_REVISION_NOT_FOUND,
                     "Unable to find the revision to rollback to.")
    _clear_rollback_to(controller, deployment)


def _rollback_to_template(controller: SyncContext, deployment: Deployment, replica_set: ReplicaSet) -> bool:
    """Copy the ReplicaSet's template and annotations into the Deployment; False if already equal.

    The annotations travel too: with RS1 {change-cause: create} and RS2 {change-cause: edit},
    rolling back to RS1 must make the Deployment say "create" again, or RS1 would be
    re-annotated "edit" when the Deployment's annotations are next copied onto it.
    """
    rolled_back = False
    if not util.equal_ignore_hash(deployment.spec.template, replica_set.spec.template):
        deployment.spec.template = util.without_hash_label(replica_set.spec.template)
        util.set_deployment_annotations_to(deployment, replica_set)
        rolled_back = True
    else:
        controller.event(deployment, WARNING, util.ROLLBACK_TEMPLATE_UNCHANGED,
                         f'The rollback revision contains the same template as current deployment "{deployment.metadata.name}"')
    _clear_rollback_to(controller, deployment)
    return rolled_back


def _clear_rollback_to(controller: SyncContext, deployment: Deployment) -> None:
    """Remove the rollback annotation and write the Deployment (template included, if changed)."""
    annotations = dict(deployment.metadata.annotations or {})
    annotations.pop(util.ROLLBACK_TO_ANNOTATION, None)
    deployment.metadata.annotations = annotations or None
    written = controller.client.replace(deployment)
    deployment.metadata.resource_version = written.metadata.resource_version
    deployment.metadata.generation = written.metadata.generation
