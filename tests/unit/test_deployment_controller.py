"""DeploymentController.sync against an in-memory API: rollouts step by step, Recreate,
rollback, pause, proportional scaling, the progress deadline, history cleanup and ownership."""

from __future__ import annotations

import pytest

from minikube_py.api import errors
from minikube_py.api.apps import ReplicaSet
from minikube_py.api.times import format_time

from controllers.deployment import util
from minikube_py.client import rollout
from controllers.deployment import sync as sync_steps

from tests.unit.test_deployment_helpers import Cluster, template


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


# -- creating -----------------------------------------------------------------------------------


def test_first_sync_creates_a_replica_set_named_after_the_template_hash(cluster):
    cluster.create_deployment(replicas=3)
    cluster.sync()
    (replica_set,) = cluster.replica_sets()
    template_hash = util.compute_hash(cluster.deployment().spec.template)
    assert replica_set.metadata.name == f"web-{template_hash}"
    assert replica_set.metadata.labels == {"app": "web", "pod-template-hash": template_hash}
    assert replica_set.spec.selector.match_labels == {"app": "web", "pod-template-hash": template_hash}
    assert replica_set.spec.template.metadata.labels["pod-template-hash"] == template_hash
    assert replica_set.spec.replicas == 3
    assert replica_set.metadata.annotations == {
        util.REVISION_ANNOTATION: "1", util.DESIRED_REPLICAS_ANNOTATION: "3", util.MAX_REPLICAS_ANNOTATION: "4"}
    reference = replica_set.metadata.owner_references[0]
    assert (reference.kind, reference.uid, reference.controller) == ("Deployment", cluster.deployment().metadata.uid, True)
    assert cluster.scaling_events() == [f"Scaled up replica set web-{template_hash} to 3"]
    progressing = cluster.deployment().status.condition("Progressing")
    assert (progressing.reason, progressing.message) == ("NewReplicaSetCreated", f'Created new replica set "web-{template_hash}"')


def test_finished_rollout_reports_complete_status_and_conditions(cluster):
    cluster.create_deployment(replicas=3)
    cluster.converge()
    deployment = cluster.deployment()
    status = deployment.status
    assert (status.replicas, status.updated_replicas, status.ready_replicas, status.available_replicas,
            status.unavailable_replicas) == (3, 3, 3, 3, None)
    assert status.observed_generation == deployment.metadata.generation
    assert deployment.metadata.annotations[util.REVISION_ANNOTATION] == "1"
    available, progressing = status.condition("Available"), status.condition("Progressing")
    assert (available.status, available.reason) == ("True", "MinimumReplicasAvailable")
    new_name = cluster.replica_sets()[0].metadata.name
    assert (progressing.status, progressing.reason, progressing.message) == (
        "True", "NewReplicaSetAvailable", f'ReplicaSet "{new_name}" has successfully progressed.')
    assert rollout.rollout_status_message(deployment) == ('deployment "web" successfully rolled out\n', True, None)


def test_sync_of_a_steady_deployment_writes_nothing(cluster):
    cluster.create_deployment(replicas=2)
    cluster.converge()
    before = cluster.revision()
    cluster.sync()
    cluster.sync()
    assert cluster.revision() == before


def test_deployment_and_replica_set_annotations_travel_but_not_last_applied(cluster):
    cluster.create_deployment(replicas=1)
    cluster.patch_deployment({"metadata": {"annotations": {
        util.CHANGE_CAUSE_ANNOTATION: "first", util.LAST_APPLIED_CONFIG_ANNOTATION: "{}"}}})
    cluster.converge()
    annotations = cluster.replica_sets()[0].metadata.annotations
    assert annotations[util.CHANGE_CAUSE_ANNOTATION] == "first"
    assert util.LAST_APPLIED_CONFIG_ANNOTATION not in annotations


# -- rolling update -----------------------------------------------------------------------------


def test_rolling_update_of_3_replicas_goes_new_1_old_2_new_2_old_1_new_3_old_0(cluster):
    cluster.create_deployment(replicas=3, image="busybox:1")
    cluster.converge()
    cluster.set_image("busybox:2")
    observed = []
    for _ in range(6):
        cluster.step()
        observed.append(cluster.sizes())
    assert observed == [
        {"busybox:1": 3, "busybox:2": 1},
        {"busybox:1": 2, "busybox:2": 1},
        {"busybox:1": 2, "busybox:2": 2},
        {"busybox:1": 1, "busybox:2": 2},
        {"busybox:1": 1, "busybox:2": 3},
        {"busybox:1": 0, "busybox:2": 3},
    ]
    old, new = (cluster.replica_set_for(image).metadata.name for image in ("busybox:1", "busybox:2"))
    assert cluster.scaling_events()[1:] == [
        f"Scaled up replica set {new} to 1",
        f"Scaled down replica set {old} to 2 from 3",
        f"Scaled up replica set {new} to 2 from 1",
        f"Scaled down replica set {old} to 1 from 2",
        f"Scaled up replica set {new} to 3 from 2",
        f"Scaled down replica set {old} to 0 from 1",
    ]
    cluster.converge()
    deployment = cluster.deployment()
    assert deployment.metadata.annotations[util.REVISION_ANNOTATION] == "2"
    assert cluster.replica_set_for("busybox:2").metadata.annotations[util.REVISION_ANNOTATION] == "2"
    assert rollout.rollout_status_message(deployment)[1] is True


def ten_ready_replicas_surge_3_unavailable_2_updating_to_busybox_2() -> Cluster:
    """10 ready busybox:1 pods, template just changed to busybox:2, new pods never turn ready."""
    cluster = Cluster(auto_ready=False)
    cluster.create_deployment(replicas=10, strategy={"type": "RollingUpdate",
                                                     "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}})
    cluster.converge()
    cluster.make_ready()
    cluster.converge()
    cluster.set_image("busybox:2")
    return cluster


def test_rollout_with_10_replicas_surge_3_unavailable_2_stays_within_13_pods_and_8_available():
    cluster = ten_ready_replicas_surge_3_unavailable_2_updating_to_busybox_2()
    for _ in range(6):
        cluster.step()
        total = sum(rs.spec.replicas for rs in cluster.replica_sets())
        available = sum(rs.status.available_replicas or 0 for rs in cluster.replica_sets())
        assert total <= 13 and available >= 8
    # New pods never become ready: the rollout stops at 8 old + 5 new.
    assert cluster.sizes() == {"busybox:1": 8, "busybox:2": 5}


def test_rollover_scales_down_the_half_rolled_replica_set_like_any_old_one(cluster):
    cluster.create_deployment(replicas=3, image="busybox:1")
    cluster.converge()
    cluster.set_image("busybox:2")
    cluster.step()
    cluster.step()
    assert cluster.sizes() == {"busybox:1": 2, "busybox:2": 1}
    cluster.set_image("busybox:3")
    cluster.converge()
    assert cluster.sizes() == {"busybox:1": 0, "busybox:2": 0, "busybox:3": 3}
    assert cluster.replica_set_for("busybox:3").metadata.annotations[util.REVISION_ANNOTATION] == "3"


def test_scaling_up_during_a_stuck_rollout_is_proportional():
    cluster = ten_ready_replicas_surge_3_unavailable_2_updating_to_busybox_2()
    cluster.converge()
    assert cluster.sizes() == {"busybox:1": 8, "busybox:2": 5}
    cluster.patch_deployment({"spec": {"replicas": 15}})
    cluster.step()
    assert cluster.sizes() == {"busybox:1": 11, "busybox:2": 7}
    for replica_set in cluster.replica_sets():
        annotations = replica_set.metadata.annotations
        assert (annotations[util.DESIRED_REPLICAS_ANNOTATION], annotations[util.MAX_REPLICAS_ANNOTATION]) == ("15", "18")


def test_scaling_a_finished_deployment_resizes_its_only_replica_set_without_a_new_revision(cluster):
    cluster.create_deployment(replicas=2)
    cluster.converge()
    cluster.patch_deployment({"spec": {"replicas": 5}})
    cluster.converge()
    (replica_set,) = cluster.replica_sets()
    assert replica_set.spec.replicas == 5
    assert replica_set.metadata.annotations[util.REVISION_ANNOTATION] == "1"
    assert cluster.scaling_events()[-1] == f"Scaled up replica set {replica_set.metadata.name} to 5 from 2"


def test_scaling_down_to_the_only_active_replica_sets_size_mid_rollout_does_not_stall_the_rollout():
    # maxSurge 0: the new ReplicaSet starts at 0 and the old one drops 3 -> 2 while sized for 3.
    # Scaling the Deployment to 2 leaves the one active ReplicaSet at the right size but with a
    # stale desired-replicas annotation; unless scaling refreshes it, every later sync sees a
    # "scaling event" again and the rollout never resumes (kubernetes/kubernetes PR 138036).
    cluster = Cluster(auto_ready=False)
    cluster.create_deployment(replicas=3, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    cluster.converge()
    cluster.make_ready()
    cluster.converge()
    cluster.set_image("busybox:2")
    cluster.step()
    assert cluster.sizes() == {"busybox:1": 2, "busybox:2": 0}
    cluster.patch_deployment({"spec": {"replicas": 2}})
    for _ in range(10):
        cluster.converge()
        cluster.make_ready()
    assert cluster.sizes() == {"busybox:1": 0, "busybox:2": 2}
    old = cluster.replica_set_for("busybox:1")
    assert old.metadata.annotations[util.DESIRED_REPLICAS_ANNOTATION] == "2"


# -- Recreate -----------------------------------------------------------------------------------


def recreate_upgrade_started(replicas: int) -> Cluster:
    """A Recreate Deployment after the first sync of an upgrade from busybox:1 to busybox:2."""
    cluster = Cluster(bind_pods=True)
    cluster.create_deployment(replicas=replicas, strategy={"type": "Recreate"})
    cluster.converge()
    cluster.set_image("busybox:2")
    cluster.step()
    return cluster


def test_recreate_starts_new_pods_only_after_old_pods_are_gone():
    cluster = recreate_upgrade_started(replicas=2)
    assert cluster.sizes() == {"busybox:1": 0}
    terminating = [pod for pod in cluster.pods() if pod.metadata.deletion_timestamp is not None]
    assert len(terminating) == 2
    # Old pods still shut down: the ReplicaSet reports 0, but no new ReplicaSet yet.
    cluster.step()
    cluster.step()
    assert cluster.sizes() == {"busybox:1": 0}
    cluster.finish_terminating()
    cluster.step()
    assert cluster.sizes() == {"busybox:1": 0, "busybox:2": 2}
    new_name = cluster.replica_set_for("busybox:2").metadata.name
    assert cluster.scaling_events()[-1] == f"Scaled up replica set {new_name} to 2"


def test_recreate_ignores_finished_old_pods():
    cluster = recreate_upgrade_started(replicas=1)
    (pod,) = cluster.pods()
    cluster.client.patch_status("pods", pod.metadata.name, {"status": {"phase": "Succeeded"}}, namespace="default")
    cluster.step()
    assert cluster.sizes() == {"busybox:1": 0, "busybox:2": 1}


# -- revisions, rollback, cleanup ---------------------------------------------------------------


def test_undo_reuses_the_old_replica_set_and_bumps_its_revision(cluster):
    cluster.create_deployment(replicas=2, image="busybox:1")
    cluster.converge()
    first = cluster.replica_set_for("busybox:1").metadata.name
    cluster.set_image("busybox:2")
    cluster.converge()

    deployment = cluster.deployment()
    target = rollout.find_rollback_target(deployment, cluster.replica_sets())
    assert target.replica_set.metadata.name == first
    cluster.client.replace(rollout.apply_rollback(deployment, target))
    cluster.converge()

    # Both ReplicaSets share the fake clock's creation time, so the list order is by name: look the old one up.
    assert first in [rs.metadata.name for rs in cluster.replica_sets()]
    assert len(cluster.replica_sets()) == 2
    rolled_back = cluster.replica_set_for("busybox:1")
    assert rolled_back.spec.replicas == 2
    assert rolled_back.metadata.annotations[util.REVISION_ANNOTATION] == "3"
    assert rolled_back.metadata.annotations[util.REVISION_HISTORY_ANNOTATION] == "1"
    assert cluster.deployment().metadata.annotations[util.REVISION_ANNOTATION] == "3"
    assert [row.revision for row in rollout.history(cluster.deployment(), cluster.replica_sets())] == [2, 3]


def test_legacy_rollback_annotation_restores_the_previous_template(cluster):
    cluster.create_deployment(replicas=1, image="busybox:1")
    cluster.converge()
    cluster.set_image("busybox:2")
    cluster.converge()
    cluster.patch_deployment({"metadata": {"annotations": {util.ROLLBACK_TO_ANNOTATION: "0"}}})
    cluster.sync()
    deployment = cluster.deployment()
    assert deployment.spec.template.spec.containers[0].image == "busybox:1"
    assert util.ROLLBACK_TO_ANNOTATION not in (deployment.metadata.annotations or {})
    assert cluster.recorder.messages("DeploymentRollback") == ['Rolled back deployment "web" to revision 1']
    cluster.converge()
    assert cluster.sizes() == {"busybox:1": 1, "busybox:2": 0}


def test_legacy_rollback_to_a_missing_revision_gives_up_with_a_warning(cluster):
    cluster.create_deployment(replicas=1)
    cluster.converge()
    cluster.patch_deployment({"metadata": {"annotations": {util.ROLLBACK_TO_ANNOTATION: "9"}}})
    cluster.sync()
    assert cluster.recorder.messages("DeploymentRollbackRevisionNotFound") == ["Unable to find the revision to rollback to."]
    assert util.ROLLBACK_TO_ANNOTATION not in (cluster.deployment().metadata.annotations or {})


def test_cleanup_keeps_only_revision_history_limit_old_replica_sets(cluster):
    cluster.create_deployment(replicas=1, image="busybox:1", revisionHistoryLimit=1)
    cluster.converge()
    for image in ("busybox:2", "busybox:3", "busybox:4"):
        cluster.set_image(image)
        cluster.converge()
    assert cluster.sizes() == {"busybox:3": 0, "busybox:4": 1}


# -- pause --------------------------------------------------------------------------------------


def test_paused_deployment_does_not_roll_out_but_still_scales(cluster):
    cluster.create_deployment(replicas=2, image="busybox:1")
    cluster.converge()
    cluster.patch_deployment({"spec": {"paused": True}})
    cluster.set_image("busybox:2")
    cluster.converge()
    assert cluster.sizes() == {"busybox:1": 2}
    progressing = cluster.deployment().status.condition("Progressing")
    assert (progressing.status, progressing.reason, progressing.message) == ("Unknown", "DeploymentPaused", "Deployment is paused")

    cluster.patch_deployment({"spec": {"replicas": 4}})
    cluster.converge()
    assert cluster.sizes() == {"busybox:1": 4}

    cluster.patch_deployment({"spec": {"paused": False}})
    cluster.sync()
    assert cluster.deployment().status.condition("Progressing").reason == "NewReplicaSetCreated"
    cluster.converge()
    assert cluster.sizes() == {"busybox:1": 0, "busybox:2": 4}


# -- progress deadline --------------------------------------------------------------------------


def test_stuck_rollout_times_out_after_the_progress_deadline():
    cluster = Cluster(auto_ready=False)
    cluster.create_deployment(replicas=1, progressDeadlineSeconds=30)
    cluster.converge()
    cluster.make_ready()
    cluster.converge()
    cluster.set_image("busybox:2")
    cluster.converge()
    requeue = cluster.sync()
    assert requeue == pytest.approx(31.0)
    cluster.clock.advance(20)
    assert cluster.sync() == pytest.approx(11.0)
    assert cluster.deployment().status.condition("Progressing").status == "True"
    cluster.clock.advance(11)
    assert cluster.sync() is None
    new_name = cluster.replica_set_for("busybox:2").metadata.name
    progressing = cluster.deployment().status.condition("Progressing")
    assert (progressing.status, progressing.reason, progressing.message) == (
        "False", "ProgressDeadlineExceeded", f'ReplicaSet "{new_name}" has timed out progressing.')
    message, done, error = rollout.rollout_status_message(cluster.deployment())
    assert error == 'deployment "web" exceeded its progress deadline' and not done


def test_resuming_resets_the_progressing_condition(cluster):
    cluster.create_deployment(replicas=1, paused=True)
    cluster.sync()
    assert cluster.deployment().status.condition("Progressing").reason == "DeploymentPaused"
    resumed = cluster.deployment()
    resumed.spec.paused = False
    cluster.clock.advance(700)
    sync_steps.check_paused_conditions(cluster.controller, resumed)
    progressing = cluster.deployment().status.condition("Progressing")
    assert (progressing.status, progressing.reason, progressing.message) == (
        "Unknown", "DeploymentResumed", "Deployment is resumed")
    assert progressing.last_update_time == format_time(cluster.clock.now())


def test_progress_refreshes_the_deadline_clock():
    cluster = Cluster(auto_ready=False)
    cluster.create_deployment(replicas=2, progressDeadlineSeconds=30)
    cluster.converge()
    cluster.clock.advance(25)
    cluster.make_ready(count=1)
    assert cluster.sync() == pytest.approx(31.0)
    progressing = cluster.deployment().status.condition("Progressing")
    assert progressing.reason == "ReplicaSetUpdated"
    assert progressing.last_update_time == format_time(cluster.clock.now())
    assert progressing.last_transition_time != progressing.last_update_time


def test_completed_rollout_needs_no_deadline_check():
    cluster = Cluster(auto_ready=False)
    cluster.create_deployment(replicas=2, progressDeadlineSeconds=30)
    cluster.converge()
    cluster.make_ready()
    assert cluster.sync() is None
    assert cluster.deployment().status.condition("Progressing").reason == "NewReplicaSetAvailable"


# -- ownership, deletion, collisions ------------------------------------------------------------


def orphan_replica_set(cluster: Cluster, name: str, image: str, labels: dict) -> ReplicaSet:
    return cluster.client.create(ReplicaSet.model_validate({
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template(image, labels)},
    }))


def test_matching_orphan_replica_set_is_adopted_and_used_as_the_new_one(cluster):
    orphan_replica_set(cluster, "handmade", "busybox:1", {"app": "web"})
    cluster.create_deployment(replicas=2, image="busybox:1")
    cluster.converge()
    (replica_set,) = cluster.replica_sets()
    assert replica_set.metadata.name == "handmade"
    assert replica_set.metadata.owner_references[0].uid == cluster.deployment().metadata.uid
    assert replica_set.spec.replicas == 2


def test_hash_collision_bumps_collision_count_and_picks_another_name(cluster):
    cluster.create_deployment(replicas=1)
    taken = f"web-{util.compute_hash(cluster.deployment().spec.template)}"
    orphan_replica_set(cluster, taken, "busybox:9", {"app": "other"})
    with pytest.raises(errors.AlreadyExists, match="collisionCount is now 1"):
        cluster.sync()
    assert cluster.deployment().status.collision_count == 1
    cluster.sync()
    names = sorted(rs.metadata.name for rs in cluster.replica_sets())
    expected = f"web-{util.compute_hash(cluster.deployment().spec.template, 1)}"
    assert names == sorted([taken, expected])


def test_deployment_being_deleted_only_gets_status(cluster):
    cluster.create_deployment(replicas=1)
    cluster.patch_deployment({"metadata": {"finalizers": ["example.com/hold"]}})
    cluster.client.delete("deployments", "web", namespace="default")
    cluster.sync()
    assert cluster.replica_sets() == []
    assert cluster.deployment().status.observed_generation == cluster.deployment().metadata.generation


def test_sync_of_a_deleted_deployment_does_nothing(cluster):
    assert cluster.sync() is None
    assert cluster.replica_sets() == []


def test_events_on_deployments_and_their_replica_sets_enqueue_the_deployment_key(cluster):
    cluster.create_deployment(replicas=1)
    cluster.informers.refresh()
    assert cluster.controller.drain() == 1
    assert len(cluster.replica_sets()) == 1
    for _ in range(10):  # let the controller see its own writes until it has nothing to do
        cluster.informers.refresh()
        if cluster.controller.drain() == 0:
            break
    cluster.run_replica_sets()  # only the ReplicaSet (status) and pods change
    cluster.informers.refresh()
    assert cluster.controller.queue.get(0.0) == "default/web"
