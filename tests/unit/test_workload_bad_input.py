"""Issue 13's bad input, each as Kubernetes handles it, and each beside a good object of the same
kind that the same controller still serves in the same pass (a bad key never stops the others).

- a cron schedule that parses but can never fire (`0 0 31 2 *`): accepted by validation, as
  Kubernetes accepts it; the controller records `InvalidSchedule` and never creates a Job;
- a StatefulSet whose serviceName has no Service: accepted, its pods run with that subdomain;
- a claim asking for a StorageClass that does not exist: Pending, `ProvisioningFailed`
  `storageclass.storage.k8s.io "x" not found`;
- an HPA whose target does not exist or has no scale subresource: `AbleToScale` False with
  `FailedGetScale`, as condition and event;
- affinity that cannot be met (a node selector and a node affinity term that exclude each other):
  accepted, Pending with kube-scheduler's FailedScheduling message; affinity that is malformed is
  refused by validation with Kubernetes' message.
"""

from __future__ import annotations

import pytest

from minikube_py.api import errors
from controllers.cronjob import CronJobController
from controllers.horizontalpodautoscaler import HorizontalPodAutoscalerController
from controllers.scheduler import Scheduler
from controllers.statefulset import StatefulSetController
from tests.unit.test_cronjob_controller import cron_body, start_at_minute
from tests.unit.test_horizontalpodautoscaler import autoscaler, deployment_with_pods
from tests.unit.test_persistentvolume_controller import Storage, claim, volume
from tests.unit.test_scheduler_plugins import NOT_HELPFUL, message, node, placed, pod, required_node_affinity, term
from tests.unit.test_statefulset_controller import make_ready, stateful_set


def events_about(cluster, name):
    return [(event.reason, event.message) for event in cluster.list("events") if event.involved_object.name == name]


def test_a_schedule_that_can_never_fire_is_an_invalid_schedule_event_and_the_other_cronjob_runs(cluster):
    controller = CronJobController(cluster.client, cluster.clock, cluster.informers)
    start_at_minute(cluster, 10)
    cluster.create("cronjobs", cron_body(name="never", schedule="0 0 31 2 *"))  # validation lets it in
    cluster.create("cronjobs", cron_body(name="tick"))
    cluster.clock.advance(60)
    cluster.settle(controller)
    assert events_about(cluster, "never") == [
        ("InvalidSchedule", "invalid schedule: 0 0 31 2 * : time difference between two schedules is less than 1 second")]
    assert [job.metadata.name.rsplit("-", 1)[0] for job in cluster.list("jobs")] == ["tick"]
    assert controller.queue.pending_delayed() == 1  # tick waits for its next minute; never is not requeued


def test_a_statefulset_without_its_service_runs_beside_a_good_one(cluster):
    controller = StatefulSetController(cluster.client, cluster.clock, cluster.informers)
    stateful_set(cluster, name="lost", replicas=1, claims=False, service="missing")
    stateful_set(cluster, name="web", replicas=1, claims=False)
    cluster.settle(controller)
    make_ready(cluster, "lost-0", "web-0")
    cluster.settle(controller)
    assert cluster.get("pods", "lost-0").spec.subdomain == "missing"
    assert [cluster.get("statefulsets", name).status.ready_replicas for name in ("lost", "web")] == [1, 1]
    assert events_about(cluster, "lost") == [("SuccessfulCreate", "create Pod lost-0 in StatefulSet lost successful")]


def test_a_claim_for_a_missing_class_stays_pending_while_another_claim_binds(cluster):
    storage = Storage(cluster)
    claim(cluster, "orphan", storage_class="x")
    volume(cluster, "v1")
    claim(cluster, "data")
    storage.settle()
    assert cluster.get("persistentvolumeclaims", "orphan").status.phase == "Pending"
    assert ("ProvisioningFailed", 'storageclass.storage.k8s.io "x" not found') in events_about(cluster, "orphan")
    assert cluster.get("persistentvolumeclaims", "data").status.phase == "Bound"


def test_an_hpa_without_a_target_fails_to_get_its_scale_while_another_hpa_scales(cluster):
    deployment_with_pods(cluster, 1, 200)
    autoscaler(cluster)
    cluster.create("horizontalpodautoscalers", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "ghost"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ghost"},
                 "maxReplicas": 3}})
    controller = HorizontalPodAutoscalerController(cluster.client, cluster.clock, cluster.informers)
    cluster.settle(controller)
    ghost = cluster.get("horizontalpodautoscalers", "ghost")
    able = next(condition for condition in ghost.status.conditions if condition.type == "AbleToScale")
    expected = 'the HPA controller was unable to get the target\'s current scale: deployments.apps "ghost" not found'
    assert (able.status, able.reason, able.message) == ("False", "FailedGetScale", expected)
    assert ("FailedGetScale", 'deployments.apps "ghost" not found') in events_about(cluster, "ghost")
    assert cluster.get("deployments", "web").spec.replicas == 4


def test_affinity_that_excludes_every_node_is_pending_while_another_pod_is_placed(cluster):
    scheduler = Scheduler(cluster.client, cluster.clock, cluster.informers)
    node(cluster, "a", labels={"disk": "ssd"})
    pod(cluster, "torn", nodeSelector={"disk": "hdd"}, affinity=required_node_affinity(term("disk", "In", "ssd")))
    pod(cluster, "fine", affinity=required_node_affinity(term("disk", "In", "ssd")))
    cluster.settle(scheduler)
    assert placed(cluster, "torn") is None
    assert message(cluster, "torn") == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
        f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}..")
    assert placed(cluster, "fine") == "a"


@pytest.mark.parametrize("expression, problem", [
    ({"key": "disk", "operator": "In", "values": []},
     "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
     ".matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    ({"key": "disk", "operator": "Exists", "values": ["ssd"]},
     "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
     ".matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
])
def test_malformed_affinity_is_refused_by_validation_with_kubernetes_messages(cluster, expression, problem):
    with pytest.raises(errors.Invalid) as caught:
        pod(cluster, "bad", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [expression]}]}}})
    assert problem in str(caught.value)
