"""What `rollout status|history|undo` compute for StatefulSets, as kubectl does client-side.

A StatefulSet's history is its ControllerRevisions (`client/history.py`), not ReplicaSets
(a DaemonSet's too: the revision helpers here take either, `client/daemonset_rollout.py` has its
status line):
`history` lists their revision numbers with the `kubernetes.io/change-cause` annotation, `undo`
puts the chosen revision's pod template back into the StatefulSet (kubectl's
`StatefulSetRollbacker` applies the revision's patch), and the status line is kubectl's
`StatefulSetStatusViewer` word for word, so scripts that read it keep working.
"""

from __future__ import annotations

from dataclasses import dataclass

from minikube_py.api.apps import ControllerRevision, DaemonSet, StatefulSet
from minikube_py.client import history
from minikube_py.client.deployments import CHANGE_CAUSE_ANNOTATION
from minikube_py.client.rollout import HistoryRow, RolloutError

# The workloads whose rollout history is their ControllerRevisions.
RevisionedWorkload = StatefulSet | DaemonSet


def status_message(stateful_set: StatefulSet) -> tuple[str, bool, str | None]:
    """(message, done, error) for one observation (`StatefulSetStatusViewer.Status`)."""
    spec, status = stateful_set.spec, stateful_set.status
    if spec.update_strategy.type != "RollingUpdate":
        return "", True, "rollout status is only available for RollingUpdate strategy type"
    if not status.observed_generation or (stateful_set.metadata.generation or 0) > status.observed_generation:
        return "Waiting for statefulset spec update to be observed...\n", False, None
    ready = status.ready_replicas or 0
    if ready < spec.replicas:
        return f"Waiting for {spec.replicas - ready} pods to be ready...\n", False, None
    rolling = spec.update_strategy.rolling_update
    if rolling is not None:
        if rolling.partition is not None:
            wanted = spec.replicas - rolling.partition
            if (status.updated_replicas or 0) < wanted:
                return (f"Waiting for partitioned roll out to finish: {status.updated_replicas or 0} out of "
                        f"{wanted} new pods have been updated...\n"), False, None
        return f"partitioned roll out complete: {status.updated_replicas or 0} new pods have been updated...\n", \
            True, None
    if status.update_revision != status.current_revision:
        return (f"waiting for statefulset rolling update to complete {status.updated_replicas or 0} pods at "
                f"revision {status.update_revision}...\n"), False, None
    return (f"statefulset rolling update complete {status.current_replicas or 0} pods at revision "
            f"{status.current_revision}...\n"), True, None


def history_rows(stateful_set: RevisionedWorkload, revisions: list[ControllerRevision]) -> list[HistoryRow]:
    rows = []
    for revision in history.owned_revisions(stateful_set, revisions):
        cause = (revision.metadata.annotations or {}).get(CHANGE_CAUSE_ANNOTATION, "<none>")
        rows.append(HistoryRow(revision.revision, cause))
    return rows


def find_revision(stateful_set: RevisionedWorkload, revisions: list[ControllerRevision], number: int) -> ControllerRevision:
    for revision in history.owned_revisions(stateful_set, revisions):
        if revision.revision == number:
            return revision
    raise RolloutError(f"unable to find the specified revision {number}")


@dataclass
class StatefulSetRollback:
    revision: ControllerRevision
    already_current: bool
    requested: int  # the --to-revision asked for (0: the previous one), as kubectl echoes it

    @property
    def skipped_message(self) -> str:
        return f"skipped rollback (current template already matches revision {self.requested})"


def rollback_target(stateful_set: RevisionedWorkload, revisions: list[ControllerRevision],
                    to_revision: int = 0) -> StatefulSetRollback:
    """The revision `undo` restores: `to_revision`, else the one before the newest."""
    owned = history.owned_revisions(stateful_set, revisions)
    if to_revision > 0:
        target = next((revision for revision in owned if revision.revision == to_revision), None)
        if target is None:
            raise RolloutError(f"unable to find specified revision {to_revision} in history")
    else:
        if len(owned) < 2:
            raise RolloutError("no last revision to roll back to")
        target = owned[-2]
    current = history.template_patch(stateful_set.spec.template)
    return StatefulSetRollback(target, history.revision_data_bytes(current) ==
                               history.revision_data_bytes(target.data), to_revision)


def apply_rollback(stateful_set: RevisionedWorkload, target: StatefulSetRollback) -> RevisionedWorkload:
    restored = stateful_set.model_copy(deep=True)
    restored.spec.template = history.template_of(target.revision)
    return restored
