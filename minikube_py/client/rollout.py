"""What `minikube-py rollout status|history|undo|restart` compute, as kubectl does client-side.

Pure functions over models, so the CLI only fetches objects, calls these and prints: the status
line `kubectl rollout status` prints for each watch event (kubectl
`pkg/polymorphichelpers/rollout_status.go`), the revision table of `rollout history`, the
ReplicaSet `rollout undo` restores with kubectl's exact errors (`rollback.go`), and the patch
`rollout restart` sends. The messages are matched by users' scripts, so they are kubectl's
word for word (semantics.md 5.3 and 1.10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minikube_py.api.core import PodTemplateSpec
from minikube_py.api.apps import Deployment, ReplicaSet
from minikube_py.api.times import format_time
from minikube_py.client import deployments


class RolloutError(Exception):
    """A rollout command cannot go on; the text is kubectl's and is printed after `error: `."""


def rollout_status_message(deployment: Deployment, revision: int = 0) -> tuple[str, bool, str | None]:
    """(message, done, error) for one observation of the Deployment (`DeploymentStatusViewer.Status`).

    `revision` > 0 pins the rollout to that revision (`--revision`). Each message ends in a
    newline, as kubectl prints it. When `error` is set, the command fails with it.
    """
    name = deployment.metadata.name
    if revision > 0:
        try:
            current = deployments.revision_of(deployment)
        except ValueError:
            current = 0
        if revision != current:
            return "", False, f"desired revision ({revision}) is different from the running revision ({current})"
    status = deployment.status
    if (deployment.metadata.generation or 0) > (status.observed_generation or 0):
        return "Waiting for deployment spec update to be observed...\n", False, None
    condition = deployments.get_condition(status, deployments.PROGRESSING)
    if condition is not None and condition.reason == deployments.TIMED_OUT_REASON:
        return "", False, f'deployment "{name}" exceeded its progress deadline'
    replicas = deployment.spec.replicas
    updated = status.updated_replicas or 0
    total = status.replicas or 0
    available = status.available_replicas or 0
    if updated < replicas:
        return (f'Waiting for deployment "{name}" rollout to finish: '
                f"{updated} out of {replicas} new replicas have been updated...\n"), False, None
    if total > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: '
                f"{total - updated} old replicas are pending termination...\n"), False, None
    if available < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: '
                f"{available} of {updated} updated replicas are available...\n"), False, None
    return f'deployment "{name}" successfully rolled out\n', True, None


def owned_replica_sets(deployment: Deployment, replica_sets: list[ReplicaSet]) -> list[ReplicaSet]:
    """The ReplicaSets whose controllerRef is this Deployment (by uid)."""
    uid = deployment.metadata.uid
    return [rs for rs in replica_sets if (reference := rs.metadata.controller_reference()) is not None and reference.uid == uid]


@dataclass(frozen=True)
class HistoryRow:
    revision: int
    change_cause: str  # "<none>" when the ReplicaSet has no kubernetes.io/change-cause


def history(deployment: Deployment, replica_sets: list[ReplicaSet]) -> list[HistoryRow]:
    """`rollout history` rows, oldest revision first; empty means "No rollout history found."

    One row per revision among the Deployment's ReplicaSets; a ReplicaSet whose revision is not a
    number is skipped, as kubectl does.
    """
    by_revision: dict[int, ReplicaSet] = {}
    for replica_set in owned_replica_sets(deployment, replica_sets):
        try:
            by_revision[deployments.revision_of(replica_set)] = replica_set
        except ValueError:
            continue
    rows = []
    for revision in sorted(by_revision):
        cause = (by_revision[revision].metadata.annotations or {}).get(deployments.CHANGE_CAUSE_ANNOTATION, "")
        rows.append(HistoryRow(revision, cause or "<none>"))
    return rows


def revision_template(deployment: Deployment, replica_sets: list[ReplicaSet], revision: int) -> PodTemplateSpec:
    """The pod template of one revision (`rollout history --revision N`)."""
    for replica_set in owned_replica_sets(deployment, replica_sets):
        try:
            if deployments.revision_of(replica_set) == revision:
                return replica_set.spec.template
        except ValueError:
            continue
    raise RolloutError("unable to find the specified revision")


@dataclass(frozen=True)
class RollbackTarget:
    """What `rollout undo` restores: one ReplicaSet's template (hash label removed) and annotations."""

    replica_set: ReplicaSet
    template: PodTemplateSpec
    annotations: dict[str, str]
    # The Deployment already runs this template: print `skipped rollback (...)`, patch nothing.
    already_current: bool
    skipped_message: str


def _replica_set_for_revision(deployment: Deployment, replica_sets: list[ReplicaSet], to_revision: int) -> ReplicaSet:
    latest_revision, latest = -1, None
    previous_revision, previous = -1, None
    for replica_set in owned_replica_sets(deployment, replica_sets):
        try:
            revision = deployments.revision_of(replica_set)
        except ValueError:
            continue
        if to_revision == 0:
            if revision > latest_revision:
                previous_revision, previous = latest_revision, latest
                latest_revision, latest = revision, replica_set
            elif revision > previous_revision:
                previous_revision, previous = revision, replica_set
        elif revision == to_revision:
            return replica_set
    if to_revision > 0:
        raise RolloutError(f"unable to find specified revision {to_revision} in history")
    if previous is None:
        raise RolloutError(f'no rollout history found for deployment "{deployment.metadata.name}"')
    return previous


def find_rollback_target(deployment: Deployment, replica_sets: list[ReplicaSet], to_revision: int = 0) -> RollbackTarget:
    """The revision `rollout undo [--to-revision=N]` goes back to (kubectl `DeploymentRollbacker`).

    0 means the previous revision (the second highest). Raises RolloutError with kubectl's text
    for an unknown revision, no history, or a paused Deployment, in kubectl's order.
    """
    if to_revision < 0:
        raise RolloutError(f"unable to find specified revision {to_revision} in history")
    replica_set = _replica_set_for_revision(deployment, replica_sets, to_revision)
    if deployment.spec.paused:
        raise RolloutError(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
        )
    annotations = {key: value for key, value in (deployment.metadata.annotations or {}).items()
                   if key in deployments.ANNOTATIONS_TO_SKIP}
    annotations.update({key: value for key, value in (replica_set.metadata.annotations or {}).items()
                        if key not in deployments.ANNOTATIONS_TO_SKIP})
    return RollbackTarget(
        replica_set=replica_set,
        template=deployments.without_hash_label(replica_set.spec.template),
        annotations=annotations,
        already_current=deployments.equal_ignore_hash(replica_set.spec.template, deployment.spec.template),
        skipped_message=f"skipped rollback (current template already matches revision {to_revision})",
    )


def apply_rollback(deployment: Deployment, target: RollbackTarget) -> Deployment:
    """A copy of the Deployment with the target's template and annotations, ready for `replace`.

    kubectl sends a JSON patch replacing /spec/template and /metadata/annotations; a full
    replace of the fetched object has the same effect here (and is refused with Conflict if
    the Deployment changed in between).
    """
    rolled_back = deployment.model_copy(deep=True)
    rolled_back.spec.template = target.template.model_copy(deep=True)
    rolled_back.metadata.annotations = dict(target.annotations) or None
    return rolled_back


def restart_patch(now: float) -> dict[str, Any]:
    """The merge patch `rollout restart` sends: a new restartedAt annotation makes a new revision."""
    return {"spec": {"template": {"metadata": {"annotations": {deployments.RESTARTED_AT_ANNOTATION: format_time(now)}}}}}
