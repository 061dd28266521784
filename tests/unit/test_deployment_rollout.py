"""The client-side rollout helpers: kubectl's status lines, history rows, undo targets and errors."""

from __future__ import annotations

import pytest

from controllers.deployment import util
from minikube_py.client import rollout

from tests.unit.test_deployment_helpers import START, deployment, replica_set


def status_of(spec_replicas=3, generation=2, observed=2, **status):
    wire = {"observedGeneration": observed, **status}
    return rollout.rollout_status_message(deployment(replicas=spec_replicas, generation=generation, status=wire))


def test_status_waits_for_the_spec_update_to_be_observed():
    assert status_of(generation=3, observed=2) == ("Waiting for deployment spec update to be observed...\n", False, None)


def test_status_reports_an_exceeded_progress_deadline_as_an_error():
    condition = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    assert status_of(conditions=[condition]) == ("", False, 'deployment "web" exceeded its progress deadline')


def test_status_counts_updated_replicas():
    assert status_of(spec_replicas=3, updatedReplicas=1) == (
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...\n', False, None)


def test_status_counts_old_replicas_pending_termination():
    assert status_of(updatedReplicas=3, replicas=5) == (
        'Waiting for deployment "web" rollout to finish: 2 old replicas are pending termination...\n', False, None)


def test_status_counts_available_updated_replicas():
    assert status_of(updatedReplicas=3, replicas=3, availableReplicas=1) == (
        'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...\n', False, None)


def test_status_reports_success():
    assert status_of(updatedReplicas=3, replicas=3, availableReplicas=3) == (
        'deployment "web" successfully rolled out\n', True, None)


def test_status_pinned_to_another_revision_is_an_error():
    web = deployment(annotations={util.REVISION_ANNOTATION: "2"})
    assert rollout.rollout_status_message(web, revision=3) == (
        "", False, "desired revision (3) is different from the running revision (2)")


def history_replica_sets():
    return [
        replica_set("one", 0, revision=1, image="busybox:1", created=START,
                    annotations={util.CHANGE_CAUSE_ANNOTATION: "kubectl create"}),
        replica_set("three", 3, revision=3, image="busybox:3", created=START + 2),
        replica_set("two", 0, revision=2, image="busybox:2", created=START + 1),
    ]


def test_history_lists_revisions_in_order_with_change_cause():
    rows = rollout.history(deployment(image="busybox:3"), history_replica_sets())
    assert [(row.revision, row.change_cause) for row in rows] == [(1, "kubectl create"), (2, "<none>"), (3, "<none>")]


def test_history_ignores_replica_sets_of_other_owners():
    stranger = replica_set("stranger", 1, revision=9, uid="other")
    stranger.metadata.owner_references[0].uid = "someone-else"
    assert [row.revision for row in rollout.history(deployment(), [stranger])] == []


def test_undo_goes_back_to_the_second_highest_revision_without_the_hash_label():
    web = deployment(image="busybox:3", annotations={util.REVISION_ANNOTATION: "3", "team": "a"})
    target = rollout.find_rollback_target(web, history_replica_sets())
    assert target.replica_set.metadata.name == "two"
    assert target.template.metadata.labels == {"app": "web"}
    assert target.template.spec.containers[0].image == "busybox:2"
    assert target.annotations == {util.REVISION_ANNOTATION: "3"}
    assert not target.already_current
    rolled_back = rollout.apply_rollback(web, target)
    assert rolled_back.spec.template.spec.containers[0].image == "busybox:2"
    assert web.spec.template.spec.containers[0].image == "busybox:3"


def test_undo_to_the_current_template_is_skipped_with_kubectls_message():
    target = rollout.find_rollback_target(deployment(image="busybox:3"), history_replica_sets(), to_revision=3)
    assert target.already_current
    assert target.skipped_message == "skipped rollback (current template already matches revision 3)"


@pytest.mark.parametrize(("to_revision", "replica_sets", "paused", "message"), [
    (7, history_replica_sets(), False, "unable to find specified revision 7 in history"),
    (-1, history_replica_sets(), False, "unable to find specified revision -1 in history"),
    (0, [replica_set("only", 3, revision=1)], False, 'no rollout history found for deployment "web"'),
    (0, history_replica_sets(), True,
     "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"),
])
def test_undo_errors_are_kubectls(to_revision, replica_sets, paused, message):
    with pytest.raises(rollout.RolloutError) as raised:
        rollout.find_rollback_target(deployment(paused=paused), replica_sets, to_revision)
    assert str(raised.value) == message


def test_undo_reports_a_missing_revision_before_a_pause():
    with pytest.raises(rollout.RolloutError, match="unable to find specified revision 9"):
        rollout.find_rollback_target(deployment(paused=True), history_replica_sets(), 9)


def test_revision_template_for_history_detail():
    template = rollout.revision_template(deployment(), history_replica_sets(), 2)
    assert template.spec.containers[0].image == "busybox:2"
    with pytest.raises(rollout.RolloutError, match="unable to find the specified revision"):
        rollout.revision_template(deployment(), history_replica_sets(), 5)


def test_restart_patch_stamps_restarted_at_on_the_pod_template():
    assert rollout.restart_patch(START) == {
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2027-01-15T08:00:00Z"}}}}
    }
