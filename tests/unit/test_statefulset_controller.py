"""StatefulSet controller: sync driven by hand against the real API in memory (tests/unit/fakes.py)."""

from __future__ import annotations

import pytest

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.printers import PRINTERS
from minikube_py.client import statefulset_rollout
from controllers.statefulset import StatefulSetController


@pytest.fixture
def controller(cluster):
    return StatefulSetController(cluster.client, cluster.clock, cluster.informers)


def stateful_set(cluster, name="web", replicas=3, policy="OrderedReady", strategy=None, claims=True,
                 retention=None, image="busybox", service="nginx"):
    spec = {"replicas": replicas, "podManagementPolicy": policy, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": image}]}}}
    if service is not None:
        spec["serviceName"] = service
    if strategy is not None:
        spec["updateStrategy"] = strategy
    if claims:
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "www"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    if retention is not None:
        spec["persistentVolumeClaimRetentionPolicy"] = retention
    return cluster.create("statefulsets", {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                           "metadata": {"name": name}, "spec": spec})


def pod_names(cluster):
    return sorted(pod.metadata.name for pod in cluster.list("pods"))


def make_ready(cluster, *names):
    for name in names:
        cluster.set_pod_status(name, phase="Running", ready=True)


def settle_ready(cluster, controller, rounds=10):
    """Sync, then make every pod Running and Ready, until nothing changes."""
    for _ in range(rounds):
        cluster.settle(controller)
        waiting = [pod.metadata.name for pod in cluster.list("pods")
                   if pod.status.phase != "Running" and pod.metadata.deletion_timestamp is None]
        if not waiting:
            cluster.settle(controller)
            return
        make_ready(cluster, *waiting)


def set_image(cluster, name, image, **spec_changes):
    current = cluster.registry.get("statefulsets", "default", name)
    current["spec"]["template"]["spec"]["containers"][0]["image"] = image
    current["spec"].update(spec_changes)
    cluster.registry.replace("statefulsets", "default", name, current)


def revisions_of_pods(cluster):
    return {pod.metadata.name: pod.metadata.labels["controller-revision-hash"] for pod in cluster.list("pods")}


def test_ordered_ready_creates_one_pod_at_a_time_each_with_its_identity_and_claim(cluster, controller):
    made = stateful_set(cluster)
    cluster.settle(controller)
    assert pod_names(cluster) == ["web-0"]
    cluster.settle(controller)
    assert pod_names(cluster) == ["web-0"]  # web-0 is not Ready yet: web-1 waits
    make_ready(cluster, "web-0")
    cluster.settle(controller)
    assert pod_names(cluster) == ["web-0", "web-1"]
    settle_ready(cluster, controller)
    assert pod_names(cluster) == ["web-0", "web-1", "web-2"]
    pod = cluster.get("pods", "web-1")
    assert (pod.spec.hostname, pod.spec.subdomain) == ("web-1", "nginx")
    assert pod.metadata.labels["apps.kubernetes.io/pod-index"] == "1"
    assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert pod.metadata.controller_reference().uid == made.metadata.uid
    assert [volume.persistent_volume_claim.claim_name for volume in pod.spec.volumes
            if volume.persistent_volume_claim] == ["www-web-1"]
    claims = {claim.metadata.name: claim for claim in cluster.list("persistentvolumeclaims")}
    assert sorted(claims) == ["www-web-0", "www-web-1", "www-web-2"]
    assert claims["www-web-1"].metadata.labels == {"app": "web"} and not claims["www-web-1"].metadata.owner_references
    status = cluster.get("statefulsets", "web").status
    assert (status.replicas, status.ready_replicas, status.current_replicas, status.updated_replicas) == (3, 3, 3, 3)
    assert status.current_revision == status.update_revision == pod.metadata.labels["controller-revision-hash"]
    assert status.observed_generation == 1
    revision = cluster.get("controllerrevisions", status.update_revision)
    assert revision.revision == 1 and revision.metadata.controller_reference().uid == made.metadata.uid
    row = PRINTERS["statefulsets"].row(cluster.registry.get("statefulsets", "default", "web"), 0)
    assert row[:2] == ["web", "3/3"]
    reasons = [event.message for event in cluster.list("events") if event.reason == "SuccessfulCreate"]
    assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in reasons
    assert "create Pod web-0 in StatefulSet web successful" in reasons


def test_parallel_creates_every_pod_at_once_and_ordinals_can_start_elsewhere(cluster, controller):
    made = stateful_set(cluster, policy="Parallel", claims=False)
    cluster.registry.patch("statefulsets", "default", "web", {"spec": {"ordinals": {"start": 5}}})
    del made
    cluster.settle(controller)
    assert pod_names(cluster) == ["web-5", "web-6", "web-7"]


def test_a_deleted_or_failed_pod_is_made_again_with_the_same_name_and_claim(cluster, controller):
    stateful_set(cluster)
    settle_ready(cluster, controller)
    old = cluster.get("pods", "web-1")
    cluster.registry.delete("pods", "default", "web-1")
    cluster.settle(controller)
    again = cluster.get("pods", "web-1")
    assert again.metadata.uid != old.metadata.uid
    assert [claim.metadata.name for claim in cluster.list("persistentvolumeclaims")] == \
        ["www-web-0", "www-web-1", "www-web-2"]
    make_ready(cluster, "web-1")
    cluster.set_pod_status("web-2", phase="Failed", ready=False)
    cluster.settle(controller)
    cluster.settle(controller)
    assert cluster.get("pods", "web-2").status.phase == "Pending"  # a new one


def test_scale_down_removes_the_highest_ordinal_first_one_at_a_time_and_keeps_claims(cluster, controller):
    stateful_set(cluster)
    settle_ready(cluster, controller)
    cluster.registry.patch("statefulsets", "default", "web", {"spec": {"replicas": 1}})
    cluster.client.clear()
    cluster.refresh()
    controller.drain()  # one sync: one pod, the highest
    assert [call.name for call in cluster.client.calls_of("delete", "pods")] == ["web-2"]
    cluster.settle(controller)
    assert [call.name for call in cluster.client.calls_of("delete", "pods")] == ["web-2", "web-1"]
    assert pod_names(cluster) == ["web-0"]
    assert len(cluster.list("persistentvolumeclaims")) == 3  # whenScaled: Retain


def test_rolling_update_goes_in_reverse_order_and_stops_at_the_partition(cluster, controller):
    stateful_set(cluster, strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}})
    settle_ready(cluster, controller)
    first = cluster.get("statefulsets", "web").status.update_revision
    set_image(cluster, "web", "busybox:2")
    cluster.client.clear()
    cluster.settle(controller)
    assert [call.name for call in cluster.client.calls_of("delete", "pods")] == ["web-2"]
    settle_ready(cluster, controller)
    assert [call.name for call in cluster.client.calls_of("delete", "pods")] == ["web-2", "web-1"]
    status = cluster.get("statefulsets", "web").status
    revisions = revisions_of_pods(cluster)
    assert revisions["web-0"] == first and revisions["web-1"] == revisions["web-2"] == status.update_revision
    assert (status.current_revision, status.updated_replicas, status.current_replicas) == (first, 2, 1)
    assert cluster.get("pods", "web-2").spec.containers[0].image == "busybox:2"
    message, done, _ = statefulset_rollout.status_message(cluster.get("statefulsets", "web"))
    assert (message, done) == ("partitioned roll out complete: 2 new pods have been updated...\n", True)
    # Partition 0: web-0 follows, and the update revision becomes the current one.
    cluster.registry.patch("statefulsets", "default", "web",
                           {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})
    settle_ready(cluster, controller)
    status = cluster.get("statefulsets", "web").status
    assert status.current_revision == status.update_revision and status.current_replicas == 3


def test_max_unavailable_lets_several_pods_update_at_once(cluster, controller):
    stateful_set(cluster, policy="Parallel", claims=False,
                 strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}})
    settle_ready(cluster, controller)
    set_image(cluster, "web", "busybox:2")
    cluster.client.clear()
    cluster.settle(controller)
    assert [call.name for call in cluster.client.calls_of("delete", "pods")] == ["web-2", "web-1"]


def test_on_delete_updates_a_pod_only_when_someone_deletes_it(cluster, controller):
    stateful_set(cluster, claims=False, strategy={"type": "OnDelete"})
    settle_ready(cluster, controller)
    set_image(cluster, "web", "busybox:2")
    cluster.client.clear()
    settle_ready(cluster, controller)
    assert cluster.client.calls_of("delete", "pods") == []
    cluster.registry.delete("pods", "default", "web-0")
    settle_ready(cluster, controller)
    assert cluster.get("pods", "web-0").spec.containers[0].image == "busybox:2"
    assert cluster.get("pods", "web-1").spec.containers[0].image == "busybox"


def test_a_rollback_renumbers_the_old_revision_and_history_is_pruned(cluster, controller):
    stateful_set(cluster, claims=False)
    settle_ready(cluster, controller)
    for image in ("busybox:2", "busybox:3"):
        set_image(cluster, "web", image)
        settle_ready(cluster, controller)
    model = cluster.get("statefulsets", "web")
    revisions = cluster.list("controllerrevisions")
    assert [row.revision for row in statefulset_rollout.history_rows(model, revisions)] == [1, 2, 3]
    target = statefulset_rollout.rollback_target(model, revisions)
    assert target.revision.revision == 2 and not target.already_current
    cluster.registry.replace("statefulsets", "default", "web",
                             statefulset_rollout.apply_rollback(model, target).to_dict())
    settle_ready(cluster, controller)
    assert {pod.spec.containers[0].image for pod in cluster.list("pods")} == {"busybox:2"}
    model = cluster.get("statefulsets", "web")
    rows = statefulset_rollout.history_rows(model, cluster.list("controllerrevisions"))
    assert [row.revision for row in rows] == [1, 3, 4]  # revision 2 came back as 4
    assert statefulset_rollout.rollback_target(model, cluster.list("controllerrevisions"), 4).already_current
    with pytest.raises(statefulset_rollout.RolloutError, match="unable to find specified revision 9 in history"):
        statefulset_rollout.rollback_target(model, cluster.list("controllerrevisions"), 9)
    cluster.registry.patch("statefulsets", "default", "web", {"spec": {"revisionHistoryLimit": 0}})
    settle_ready(cluster, controller)
    assert len(cluster.list("controllerrevisions")) == 1


def controllers_of(obj):
    return [(reference.kind, reference.uid) for reference in obj.metadata.owner_references or []
            if reference.controller]


def test_the_retention_policy_makes_the_set_or_a_condemned_pod_the_controller_of_the_claims(cluster, controller):
    made = stateful_set(cluster, retention={"whenDeleted": "Delete", "whenScaled": "Delete"})
    settle_ready(cluster, controller)
    claim = cluster.get("persistentvolumeclaims", "www-web-2")
    assert controllers_of(claim) == [("StatefulSet", made.metadata.uid)]
    assert claim.metadata.owner_references[0].block_owner_deletion is True
    cluster.registry.patch("statefulsets", "default", "web", {"spec": {"replicas": 2}})
    pod_uid = cluster.get("pods", "web-2").metadata.uid
    cluster.settle(controller)
    # Scaled down: the pod alone owns it (the set's reference goes), so the claim goes with the pod.
    assert controllers_of(cluster.get("persistentvolumeclaims", "www-web-2")) == [("Pod", pod_uid)]
    assert controllers_of(cluster.get("persistentvolumeclaims", "www-web-1")) == [("StatefulSet", made.metadata.uid)]


def test_changing_the_retention_policy_to_retain_releases_the_claims(cluster, controller):
    stateful_set(cluster, replicas=1, retention={"whenDeleted": "Delete"})
    settle_ready(cluster, controller)
    assert controllers_of(cluster.get("persistentvolumeclaims", "www-web-0"))
    cluster.registry.patch("statefulsets", "default", "web",
                           {"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain"}}})
    cluster.settle(controller)
    assert cluster.get("persistentvolumeclaims", "www-web-0").metadata.owner_references is None


def test_a_claim_with_another_controller_or_a_stale_reference_is_left_alone(cluster, controller):
    other = cluster.replica_set("keeper", 0, labels={"keeper": "yes"})
    foreign = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "keeper", "uid": other.metadata.uid,
               "controller": True}
    stale = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "an-earlier-web",
             "controller": True}
    for name, reference in (("www-web-0", foreign), ("www-web-1", stale)):
        cluster.create("persistentvolumeclaims", {"metadata": {"name": name, "ownerReferences": [reference]},
                                                  "spec": {"accessModes": ["ReadWriteOnce"],
                                                           "resources": {"requests": {"storage": "1Gi"}}}})
    stateful_set(cluster, replicas=2, retention={"whenDeleted": "Delete"})
    settle_ready(cluster, controller)
    assert [ref.uid for ref in cluster.get("persistentvolumeclaims", "www-web-0").metadata.owner_references] == \
        [other.metadata.uid]
    assert [ref.uid for ref in cluster.get("persistentvolumeclaims", "www-web-1").metadata.owner_references] == \
        ["an-earlier-web"]


def test_an_orphan_pod_with_a_matching_label_and_an_ordinal_name_is_adopted(cluster, controller):
    cluster.pod("web-0", labels={"app": "web"})
    cluster.pod("web-extra", labels={"app": "web"})   # not one of the set's names
    cluster.pod("db-0", labels={"app": "web"})        # another set's name
    cluster.pod("web-1", labels={"app": "other"})     # not selected
    made = stateful_set(cluster, claims=False)
    cluster.settle(controller)
    assert controllers_of(cluster.get("pods", "web-0")) == [("StatefulSet", made.metadata.uid)]
    for name in ("web-extra", "db-0", "web-1"):
        assert cluster.get("pods", name).metadata.owner_references is None, name
    assert cluster.client.calls_of("create", "pods") == []  # web-0 is the adopted pod: it waits for it
    make_ready(cluster, "web-0")
    cluster.settle(controller)
    assert cluster.get("statefulsets", "web").status.ready_replicas == 1


def test_an_orphan_pod_appearing_later_is_adopted_through_the_pod_event(cluster, controller):
    made = stateful_set(cluster, replicas=0, claims=False)
    cluster.settle(controller)
    cluster.pod("web-3", labels={"app": "web"})
    cluster.settle(controller)
    (adoption,) = cluster.client.calls_of("patch", "pods")
    assert adoption.name == "web-3"
    assert adoption.detail["metadata"]["ownerReferences"][0]["uid"] == made.metadata.uid
    # Adopted above the replica count: it is condemned like any other pod of the set.
    assert [call.name for call in cluster.client.calls_of("delete", "pods")] == ["web-3"]


def test_an_owned_pod_that_stops_matching_is_released(cluster, controller):
    made = stateful_set(cluster, replicas=1, claims=False)
    settle_ready(cluster, controller)
    cluster.registry.patch("pods", "default", "web-0", {"metadata": {"labels": {"app": "debug"}}})
    cluster.settle(controller)
    released = cluster.get("pods", "web-0")
    assert released.metadata.owner_references is None
    assert cluster.get("statefulsets", "web").status.replicas == 0
    assert made.metadata.uid  # the set stays, waiting for the name web-0 to be free


def test_no_adoption_when_a_fresh_read_shows_the_set_being_deleted(cluster, controller):
    cluster.create("statefulsets", {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                    "metadata": {"name": "web", "finalizers": ["example.com/hold"]},
                                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                                             "template": {"metadata": {"labels": {"app": "web"}},
                                                          "spec": {"containers": [{"name": "main",
                                                                                   "image": "busybox"}]}}}})
    cluster.pod("web-0", labels={"app": "web"})
    cluster.refresh()
    cluster.registry.delete("statefulsets", "default", "web")  # the cache still shows it alive
    controller.drain()
    assert cluster.get("pods", "web-0").metadata.owner_references is None
    assert cluster.client.calls_of("patch", "pods") == []
    assert cluster.get("statefulsets", "web").metadata.deletion_timestamp is not None


def test_orphan_revisions_the_selector_matches_are_adopted(cluster, controller):
    made = stateful_set(cluster, replicas=1, claims=False)
    cluster.settle(controller)
    (revision,) = cluster.list("controllerrevisions")
    cluster.registry.patch("controllerrevisions", "default", revision.metadata.name,
                           {"metadata": {"ownerReferences": None}})  # orphaned, as `delete --cascade=orphan` leaves it
    controller.enqueue("default/web")  # Kubernetes' set controller notices orphan revisions on its next sync too
    cluster.settle(controller)
    (revision,) = cluster.list("controllerrevisions")
    assert controllers_of(revision) == [("StatefulSet", made.metadata.uid)]


def test_a_statefulset_whose_service_does_not_exist_still_runs_its_pods(cluster, controller):
    stateful_set(cluster, replicas=1, claims=False, service="missing")
    settle_ready(cluster, controller)
    assert cluster.get("pods", "web-0").spec.subdomain == "missing"


def test_rollout_status_says_what_kubectl_says(cluster, controller):
    stateful_set(cluster, claims=False)
    cluster.settle(controller)
    message, done, _ = statefulset_rollout.status_message(cluster.get("statefulsets", "web"))
    assert (message, done) == ("Waiting for 3 pods to be ready...\n", False)
    cluster.registry.patch("statefulsets", "default", "web", {"spec": {"updateStrategy": {"type": "OnDelete",
                                                                                          "rollingUpdate": None}}})
    _, _, error = statefulset_rollout.status_message(cluster.get("statefulsets", "web"))
    assert error == "rollout status is only available for RollingUpdate strategy type"


@pytest.mark.parametrize("change, message", [
    ({"podManagementPolicy": "Random"}, 'spec.podManagementPolicy: Unsupported value: "Random"'),
    ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
     "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"),
    ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: must be greater than 0"),
    ({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep"}},
     'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep"'),
    ({"selector": {"matchLabels": {"app": "other"}}},
     "spec.template.metadata.labels: Invalid value: .*`selector` does not match template `labels`"),
])
def test_bad_statefulsets_are_refused_with_kubernetes_messages(cluster, change, message):
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "bad"},
            "spec": {"selector": {"matchLabels": {"app": "bad"}},
                     "template": {"metadata": {"labels": {"app": "bad"}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}, **change}}
    with pytest.raises(errors.Invalid, match=message):
        cluster.registry.create("statefulsets", "default", body)


def test_only_kubernetes_mutable_fields_of_a_statefulset_may_change(cluster):
    stateful_set(cluster)
    current = cluster.registry.get("statefulsets", "default", "web")
    current["spec"]["serviceName"] = "other"
    with pytest.raises(errors.Invalid, match="spec: Forbidden: updates to statefulset spec for fields other than"):
        cluster.registry.replace("statefulsets", "default", "web", current)
    assert api.resource_for("sts").plural == "statefulsets"


def test_containers_may_mount_a_claim_template_by_name_but_not_an_unknown_volume(cluster):
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [
                         {"name": "main", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}
    assert cluster.registry.create("statefulsets", "default", body)["spec"]["template"]["spec"].get("volumes") is None
    body["metadata"]["name"] = "db2"
    body["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = "other"
    with pytest.raises(errors.Invalid, match='volumeMounts\\[0\\].name: Not found: "data"'):
        cluster.registry.create("statefulsets", "default", body)


def test_a_pod_with_a_subdomain_finds_its_fully_qualified_name_in_etc_hosts():
    from minikube_py.agent.podfiles import hosts_file

    text = hosts_file("10.244.0.5", "web-0", domain="nginx.default.svc.cluster.local")
    assert "10.244.0.5\tweb-0.nginx.default.svc.cluster.local\tweb-0\n" in text
    assert "10.244.0.5\tweb-0\n" in hosts_file("10.244.0.5", "web-0")
