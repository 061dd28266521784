"""ControllerRevisions (apps/v1) and the shared history helper (client/history.py)."""

from __future__ import annotations

import pytest

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.printers import PRINTERS
from minikube_py.client import history


def owner(cluster, name="web"):
    return cluster.create("deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}})


def template(image="busybox"):
    return api.PodTemplateSpec.model_validate({"metadata": {"labels": {"app": "web"}},
                                               "spec": {"containers": [{"name": "main", "image": image}]}})


def test_fnv1_matches_the_reference_vectors_of_go_fnv_new32():
    assert history.fnv1_32(b"") == 0x811C9DC5
    assert history.fnv1_32(b"a") == 0x050C5D7E
    assert history.fnv1_32(b"foobar") == 0x31F0B262


def test_a_revision_is_named_after_its_parent_and_the_hash_of_its_data(cluster):
    parent = owner(cluster)
    made = history.new_controller_revision(parent, {"app": "web"}, history.template_patch(template()), 1, None)
    hash_text = made.metadata.labels[history.CONTROLLER_REVISION_HASH_LABEL]
    assert made.metadata.name == f"web-{hash_text}"
    assert made.metadata.labels["app"] == "web"
    assert made.metadata.controller_reference().uid == parent.metadata.uid
    assert made.data["spec"]["template"]["$patch"] == "replace"
    assert history.template_of(made) == template()
    other = history.new_controller_revision(parent, {"app": "web"}, history.template_patch(template("nginx")), 2, None)
    assert other.metadata.name != made.metadata.name
    probed = history.new_controller_revision(parent, {"app": "web"}, history.template_patch(template()), 1, 1)
    assert probed.metadata.name != made.metadata.name
    assert history.equal_revision(made, made.model_copy(deep=True))
    assert not history.equal_revision(made, other)


def test_create_returns_an_existing_equal_revision_and_probes_past_a_hash_collision(cluster):
    parent = owner(cluster)
    first = history.new_controller_revision(parent, {"app": "web"}, history.template_patch(template()), 1, 0)
    created, collisions = history.create_controller_revision(cluster.client, parent, first, 0)
    assert collisions == 0 and created.metadata.uid
    again, collisions = history.create_controller_revision(cluster.client, parent, first, 0)
    assert (again.metadata.uid, collisions) == (created.metadata.uid, 0)
    # Another revision whose name is already taken by different data: the count goes up.
    clash = history.new_controller_revision(parent, {"app": "web"}, history.template_patch(template("nginx")), 2, 0)
    cluster.registry.create("controllerrevisions", "default", {**clash.to_dict(), "data": {"other": True}})
    made, collisions = history.create_controller_revision(cluster.client, parent, clash, 0)
    assert collisions == 1
    assert made.metadata.name != clash.metadata.name and made.data == clash.data


def test_pruning_keeps_the_newest_and_every_live_revision(cluster):
    parent = owner(cluster)
    made = []
    for number, image in enumerate(["a", "b", "c", "d", "e"], start=1):
        revision = history.new_controller_revision(parent, {}, history.template_patch(template(image)), number, None)
        made.append(history.create_controller_revision(cluster.client, parent, revision, 0)[0])
    owned = history.owned_revisions(parent, cluster.list("controllerrevisions"))
    assert [revision.revision for revision in owned] == [1, 2, 3, 4, 5]
    assert history.next_revision(owned) == 6
    doomed = history.revisions_to_prune(owned, live={made[0].metadata.name, made[4].metadata.name}, limit=2)
    assert [revision.revision for revision in doomed] == [2]


def test_the_api_refuses_changed_data_and_negative_revisions_and_prints_kubectl_columns(cluster):
    parent = owner(cluster)
    revision = history.new_controller_revision(parent, {}, history.template_patch(template()), 1, None)
    stored = cluster.registry.create("controllerrevisions", "default", revision.to_dict())
    with pytest.raises(errors.Invalid, match=r"data: Invalid value: .*field is immutable"):
        cluster.registry.replace("controllerrevisions", "default", stored["metadata"]["name"],
                                 {**stored, "data": {"spec": {}}})
    bumped = cluster.registry.replace("controllerrevisions", "default", stored["metadata"]["name"],
                                      {**stored, "revision": 7})
    assert bumped["revision"] == 7
    with pytest.raises(errors.Invalid, match="revision: Invalid value: -1: must be greater than or equal to 0"):
        cluster.registry.create("controllerrevisions", "default",
                                {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                                 "metadata": {"name": "x"}, "data": {}, "revision": -1})
    with pytest.raises(errors.Invalid, match="data: Required value: data is mandatory"):
        cluster.registry.create("controllerrevisions", "default",
                                {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "y"}})
    row = PRINTERS["controllerrevisions"].row(bumped, 0)
    assert row[:3] == [stored["metadata"]["name"], "deployment.apps/web", 7]


def test_the_garbage_collector_deletes_the_revisions_of_a_deleted_owner(cluster):
    from controllers.garbagecollector import GarbageCollector

    collector = GarbageCollector(cluster.client, cluster.clock, cluster.informers)
    parent = owner(cluster)
    revision = history.new_controller_revision(parent, {}, history.template_patch(template()), 1, None)
    history.create_controller_revision(cluster.client, parent, revision, 0)
    cluster.settle(collector)
    assert len(cluster.list("controllerrevisions")) == 1
    cluster.registry.delete("deployments", "default", "web")
    cluster.settle(collector)
    assert cluster.list("controllerrevisions") == []
