"""Every workload controller claims its objects the same way (`ControllerRefManager`,
controllers/common.py, as k/k's controller_ref_manager.go): an orphan its selector matches is
adopted (a controller reference), an owned object that stops matching is released, and an owner
that a fresh read shows being deleted adopts nothing, whatever its cached copy says.

One table of the five controllers (ReplicaSet, Deployment, Job, DaemonSet, StatefulSet) and the
kind each claims, run through the same three scenarios on the fake cluster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from controllers.daemonset import DaemonSetController
from controllers.deployment.controller import DeploymentController
from controllers.job import JobController
from controllers.replicaset import ReplicaSetController
from controllers.statefulset import StatefulSetController

HOLD = "example.com/hold"  # a finalizer keeps a deleted owner visible, with its deletionTimestamp
CONTAINERS = [{"name": "main", "image": "busybox"}]


def template(labels: dict) -> dict:
    return {"metadata": {"labels": labels}, "spec": {"containers": CONTAINERS}}


@dataclass
class Case:
    resource: str                                   # the owner's kind
    claimed: str                                    # the kind it claims
    controller: Callable[[Any], Any]
    owner_body: Callable[[], dict]
    labels: Callable[[Any], dict]                   # labels the owner's selector matches
    orphan_name: str = "handmade"
    node: bool = False                              # the orphan pod sits on node-1

    def owner(self, cluster, finalizers=None):
        body = self.owner_body()
        if finalizers:
            body["metadata"]["finalizers"] = finalizers
        return cluster.create(self.resource, body)

    def orphan(self, cluster, owner):
        labels = self.labels(owner)
        if self.claimed == "replicasets":
            return cluster.create("replicasets", {
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": self.orphan_name, "labels": labels},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template(labels)}})
        return cluster.pod(self.orphan_name, labels=labels, node_name="node-1" if self.node else None)


def apps(kind: str, spec: dict) -> Callable[[], dict]:
    return lambda: {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web"}, "spec": spec}


WEB = {"app": "web"}
CASES = [
    Case("replicasets", "pods", lambda c: ReplicaSetController(c.client, c.clock, c.informers),
         apps("ReplicaSet", {"replicas": 1, "selector": {"matchLabels": WEB}, "template": template(WEB)}),
         lambda owner: WEB),
    Case("deployments", "replicasets", lambda c: DeploymentController(c.client, c.clock, c.informers),
         apps("Deployment", {"replicas": 1, "selector": {"matchLabels": WEB}, "template": template(WEB)}),
         lambda owner: WEB),
    Case("jobs", "pods", lambda c: JobController(c.client, c.clock, c.informers),
         lambda: {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "web"},
                  "spec": {"parallelism": 1, "completions": 1, "template": {"spec": {
                      "restartPolicy": "Never", "containers": CONTAINERS}}}},
         lambda owner: {"batch.kubernetes.io/controller-uid": owner.metadata.uid, "job-name": "web"}),
    Case("daemonsets", "pods", lambda c: DaemonSetController(c.client, c.clock, c.informers),
         apps("DaemonSet", {"selector": {"matchLabels": WEB}, "template": template(WEB)}),
         lambda owner: WEB, node=True),
    Case("statefulsets", "pods", lambda c: StatefulSetController(c.client, c.clock, c.informers),
         apps("StatefulSet", {"replicas": 1, "serviceName": "web", "selector": {"matchLabels": WEB},
                              "template": template(WEB)}),
         lambda owner: WEB, orphan_name="web-0"),
]
IDS = [case.resource for case in CASES]


@pytest.fixture
def scene(cluster):
    cluster.add_node("node-1")
    return cluster


def controller_of(cluster, resource, name):
    obj = cluster.get(resource, name)
    return [(reference.kind, reference.uid) for reference in obj.metadata.owner_references or []
            if reference.controller]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_matching_orphan_is_adopted(scene, case):
    controller = case.controller(scene)
    owner = case.owner(scene)
    case.orphan(scene, owner)
    scene.settle(controller)
    adopted = scene.get(case.claimed, case.orphan_name)
    assert adopted is not None
    assert [(reference.kind, reference.uid, reference.block_owner_deletion)
            for reference in adopted.metadata.owner_references if reference.controller] == \
        [(owner.kind, owner.metadata.uid, True)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_an_owned_object_whose_labels_stop_matching_is_released(scene, case):
    controller = case.controller(scene)
    owner = case.owner(scene)
    case.orphan(scene, owner)
    scene.settle(controller)
    assert controller_of(scene, case.claimed, case.orphan_name) == [(owner.kind, owner.metadata.uid)]
    relabelled = {key: "debug" for key in case.labels(owner)}
    scene.registry.patch(case.claimed, "default", case.orphan_name, {"metadata": {"labels": relabelled}})
    scene.settle(controller)
    assert controller_of(scene, case.claimed, case.orphan_name) == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_an_owner_being_deleted_adopts_nothing_even_when_its_cache_says_otherwise(scene, case):
    controller = case.controller(scene)
    owner = case.owner(scene, finalizers=[HOLD])
    case.orphan(scene, owner)
    scene.refresh()
    scene.registry.delete(case.resource, "default", "web")  # the cache still shows it alive
    controller.drain()
    assert scene.get(case.resource, "web").metadata.deletion_timestamp is not None
    assert controller_of(scene, case.claimed, case.orphan_name) == []
    assert scene.client.calls_of("patch", case.claimed) == []
