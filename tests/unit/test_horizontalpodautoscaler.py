"""HorizontalPodAutoscaler: Kubernetes' replica calculator cases, behavior policies and
stabilization, validation, and the controller on the fake cluster and clock."""

from __future__ import annotations

import pytest

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.autoscaling import HPAScalingPolicy, HPAScalingRules
from minikube_py.api.autoscaling_rows import format_targets
from minikube_py.api.meta import ObjectMeta
from minikube_py.api.metrics import ContainerMetrics, PodMetrics
from minikube_py.api.times import format_time
from controllers.horizontalpodautoscaler import (
    HorizontalPodAutoscalerController, MetricError, PodSample, Recommendation, ScaleEvent, limited_with_behavior,
    limited_without_behavior, resource_replicas, scale_down_limit, scale_up_limit, stabilized)

NOW = 1_800_000_000.0
LONG_AGO = NOW - 3600


def samples(levels, requests=None, ready=None, phases=None):
    """Pods as replica_calculator_test.go describes them: usage in millicores, requests, readiness."""
    result = []
    for index, level in enumerate(levels):
        result.append(PodSample(
            name=f"pod-{index}", phase=(phases or {}).get(index, "Running"), deleting=False,
            ready=True if ready is None else ready[index], ready_since=LONG_AGO, started=LONG_AGO,
            usage=level, metric_timestamp=NOW, metric_window=15,
            request=(requests[index] if requests else 1000)))
    return result


# (name, current replicas, usage in millicores per pod (None: no metrics), requests, readiness,
#  target utilization, expected replicas, expected utilization): Kubernetes' replica calculator tests.
CPU_CASES = [
    ("scale up", 3, [300, 500, 700], None, None, 30, 5, 50),
    ("scale down", 5, [100, 300, 500, 250, 250], None, None, 50, 3, 28),
    ("within tolerance", 3, [1010, 1030, 1020], [900, 1000, 1100], None, 100, 3, 102),
    ("unready pods count as idle when scaling up", 3, [300, 500, 700], None, [False, True, True], 30, 4, 60),
    ("a missing pod counts as at the target when scaling down", 4, [400, 95, 1000, None], None, None, 100, 3, 49),
    ("a missing pod counts as idle when scaling up", 4, [1000, 1400, 1500, None], None, None, 100, 4, 130),
    ("missing metrics and exactly at target: no change", 2, [1000, None], None, None, 100, 2, 100),
]


@pytest.mark.parametrize("name, current, levels, requests, ready, target, expected, utilization", CPU_CASES,
                         ids=[case[0] for case in CPU_CASES])
def test_cpu_utilization_gives_kubernetes_replica_counts(name, current, levels, requests, ready, target, expected,
                                                         utilization):
    result = resource_replicas(current, samples(levels, requests, ready), "cpu", NOW, target_utilization=target)
    assert (result.count, result.utilization) == (expected, utilization)


def test_memory_average_value_is_usage_per_pod_against_the_target():
    # 200 Mi and 300 Mi used, 100 Mi per pod wanted: 2.5 x 2 pods = 5.
    mib = 1024 * 1024 * 1000  # milli-bytes
    result = resource_replicas(2, samples([200 * mib, 300 * mib]), "memory", NOW, target_average=100 * mib)
    assert result.count == 5 and result.average == 250 * mib


def test_pods_being_deleted_or_failed_are_ignored_and_pending_ones_are_unready():
    pods = samples([500, 500, 0, 0], phases={3: "Pending"})
    pods[2].phase = "Failed"
    result = resource_replicas(2, pods, "cpu", NOW, target_utilization=50)
    assert result.count == 2 and result.utilization == 50  # only the two running ones count


def test_a_pod_in_its_cpu_initialization_period_is_unready_until_a_window_after_ready():
    pods = samples([900, 100])
    pods[0].started, pods[0].ready_since = NOW - 20, NOW - 5  # ready 5 s ago, window 15 s: not yet
    result = resource_replicas(2, pods, "cpu", NOW, target_utilization=50)
    # Only pod-1 (10 %) counts, and the unready one is not counted when scaling down: 1 replica.
    assert result.count == 1


def test_no_metrics_and_missing_requests_are_errors_with_kubernetes_messages():
    with pytest.raises(MetricError, match="did not receive metrics for targeted pods"):
        resource_replicas(2, samples([None, None]), "cpu", NOW, target_utilization=50)
    with pytest.raises(MetricError, match="missing request for cpu"):
        resource_replicas(1, samples([100], requests=[None]), "cpu", NOW, target_utilization=50)
    with pytest.raises(MetricError, match="no pods returned by selector"):
        resource_replicas(1, [], "cpu", NOW, target_utilization=50)


def rules(select="Max", window=None, *policies):
    return HPAScalingRules(stabilization_window_seconds=window, select_policy=select,
                           policies=[HPAScalingPolicy(type=t, value=v, period_seconds=p) for t, v, p in policies])


def test_scale_down_policies_from_the_kubernetes_docs():
    # Pods 4 and Percent 10 per minute, Max: from 80 the Percent policy allows 8, from 30 Pods allows 4.
    down = rules("Max", None, ("Pods", 4, 60), ("Percent", 10, 60))
    assert scale_down_limit(80, [], down, NOW) == 72
    assert scale_down_limit(30, [], down, NOW) == 26
    assert scale_down_limit(80, [], rules("Min", None, ("Pods", 4, 60), ("Percent", 10, 60)), NOW) == 76
    assert scale_down_limit(80, [], rules("Disabled", None, ("Pods", 4, 60)), NOW) == 80
    # 8 removed in the last minute: the period started at 88, 10 % of that is 8.8, so 79.2 -> 79.
    assert scale_down_limit(80, [ScaleEvent(NOW - 30, 8)], rules("Max", None, ("Percent", 10, 60)), NOW) == 79


def test_scale_up_default_policies_allow_four_pods_or_double_per_15_seconds():
    up = rules("Max", 0, ("Pods", 4, 15), ("Percent", 100, 15))
    assert scale_up_limit(1, [], up, NOW) == 5
    assert scale_up_limit(10, [], up, NOW) == 20
    assert scale_up_limit(4, [ScaleEvent(NOW - 5, 2)], up, NOW) == 6
    assert scale_up_limit(4, [ScaleEvent(NOW - 20, 2)], up, NOW) == 8  # the event is outside the period


def test_limits_give_kubernetes_reasons():
    up, down = rules("Max", 0, ("Pods", 4, 15), ("Percent", 100, 15)), rules("Max", None, ("Percent", 100, 15))
    assert limited_with_behavior(1, 10, 1, 8, up, down, [], [], NOW) == (
        5, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
    assert limited_with_behavior(4, 10, 1, 6, up, down, [], [], NOW)[:2] == (6, "TooManyReplicas")
    assert limited_with_behavior(4, 0, 2, 6, up, down, [], [], NOW)[:2] == (2, "TooFewReplicas")
    assert limited_with_behavior(4, 3, 1, 6, up, down, [], [], NOW)[1] == "DesiredWithinRange"
    assert limited_without_behavior(1, 10, 1, 10) == (
        4, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
    assert limited_without_behavior(3, 0, 1, 10)[:2] == (1, "TooFewReplicas")


def test_stabilization_keeps_the_highest_recommendation_of_the_scale_down_window():
    recommendations = [Recommendation(NOW - 200, 5), Recommendation(NOW - 100, 4)]
    assert stabilized(recommendations, 5, 2, 0, 300, NOW) == 5
    assert stabilized(recommendations, 5, 2, 0, 150, NOW) == 4  # the 5 is outside a 150 s window
    # The scale-up window keeps the lowest: a spike to 9 within 60 s of a 3 waits.
    assert stabilized([Recommendation(NOW - 30, 3)], 3, 9, 60, 0, NOW) == 3


def test_validation_has_kubernetes_messages_and_defaults_fill_behavior():
    with pytest.raises(errors.Invalid) as invalid:
        api.parse_object({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                          "metadata": {"name": "web"},
                          "spec": {"scaleTargetRef": {"kind": "Deployment"}, "minReplicas": 3, "maxReplicas": 2,
                                   "metrics": [{"type": "Resource", "resource": {
                                       "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}],
                                   "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0,
                                                                          "periodSeconds": 1801}]}}}})
    text = invalid.value.message
    for expected in ("spec.scaleTargetRef.name: Required value",
                     "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
                     "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
                     "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
                     "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801"):
        assert expected in text
    hpa = api.parse_object({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                            "metadata": {"name": "web"},
                            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4,
                                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}}}).to_dict()
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}
    assert hpa["spec"]["behavior"]["scaleUp"] == {
        "stabilizationWindowSeconds": 0, "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 5


def test_targets_column_reads_like_kubectl():
    hpa = {"spec": {"metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]},
        "status": {"currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": 45, "averageValue": "45m"}}}]}}
    assert format_targets(hpa) == "cpu: 45%/50%, memory: <unknown>/100Mi"


# -- the controller ------------------------------------------------------------------------------


class Usage:
    """A node's metrics source: the given millicores for every pod of the deployment."""

    def __init__(self, cluster, millicores):
        self.cluster, self.millicores = cluster, millicores

    def node_metrics(self):
        return None

    def pod_metrics(self):
        return [PodMetrics(metadata=ObjectMeta(name=pod.metadata.name, namespace="default", uid=pod.metadata.uid),
                           timestamp=format_time(self.cluster.clock.now()), window="15s",
                           containers=[ContainerMetrics(name="main", usage={"cpu": f"{self.millicores}m",
                                                                            "memory": "10Mi"})])
                for pod in self.cluster.list("pods")]


def deployment_with_pods(cluster, replicas, millicores):
    cluster.create("deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                     {"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}}}})
    for index in range(replicas):
        cluster.create("pods", {"metadata": {"name": f"web-{index}", "labels": {"app": "web"}},
                                "spec": {"containers": [{"name": "main", "image": "busybox",
                                                         "resources": {"requests": {"cpu": "100m"}}}]}})
        cluster.registry.patch_status("pods", "default", f"web-{index}", {"status": {
            "phase": "Running", "startTime": format_time(cluster.clock.now() - 3600),
            "conditions": [{"type": "Ready", "status": "True",
                            "lastTransitionTime": format_time(cluster.clock.now() - 3600)}]}})
    cluster.registry.resource_metrics.add_node("node-1", Usage(cluster, millicores))


def autoscaler(cluster, kind="Deployment", behavior=None, api_version="apps/v1"):
    spec = {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": "web"}, "minReplicas": 1,
            "maxReplicas": 10, "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}
    if behavior is not None:
        spec["behavior"] = behavior
    return cluster.create("horizontalpodautoscalers", {"apiVersion": "autoscaling/v2",
                                                       "kind": "HorizontalPodAutoscaler",
                                                       "metadata": {"name": "web"}, "spec": spec})


def conditions_of(cluster):
    hpa = cluster.get("horizontalpodautoscalers", "web")
    return {c.type: (c.status, c.reason, c.message) for c in hpa.status.conditions}


def events_of(cluster):
    return [(event.reason, event.message) for event in cluster.list("events")]


def test_the_controller_scales_a_deployment_up_through_its_scale_subresource(cluster):
    deployment_with_pods(cluster, 1, 200)  # 200 % of the request against a 50 % target: 4 replicas
    autoscaler(cluster)
    controller = HorizontalPodAutoscalerController(cluster.client, cluster.clock, cluster.informers)
    cluster.settle(controller)
    assert cluster.get("deployments", "web").spec.replicas == 4
    assert ("SuccessfulRescale", "New size: 4; reason: cpu resource utilization (percentage of request) above target") \
        in events_of(cluster)
    conditions = conditions_of(cluster)
    assert conditions["AbleToScale"] == ("True", "SucceededRescale",
                                         "the HPA controller was able to update the target scale to 4")
    assert conditions["ScalingActive"] == ("True", "ValidMetricFound", "the HPA was able to successfully calculate "
                                           "a replica count from cpu resource utilization (percentage of request)")
    assert conditions["ScalingLimited"] == ("False", "DesiredWithinRange",
                                            "the desired count is within the acceptable range")
    status = cluster.get("horizontalpodautoscalers", "web").status
    assert (status.current_replicas, status.desired_replicas) == (1, 4) and status.last_scale_time
    assert status.current_metrics[0].resource.current.average_utilization == 200


def test_scale_down_waits_out_the_stabilization_window(cluster):
    deployment_with_pods(cluster, 4, 10)  # 10 % against 50 %: 1 replica wanted
    autoscaler(cluster, behavior={"scaleDown": {"stabilizationWindowSeconds": 60}})
    controller = HorizontalPodAutoscalerController(cluster.client, cluster.clock, cluster.informers)
    controller.recommendations["default/web"] = [Recommendation(cluster.clock.now() - 10, 4)]
    cluster.settle(controller)
    assert cluster.get("deployments", "web").spec.replicas == 4
    assert conditions_of(cluster)["AbleToScale"][1] == "ScaleDownStabilized"
    cluster.clock.advance(61)
    controller.enqueue("default/web")
    cluster.settle(controller)
    assert cluster.get("deployments", "web").spec.replicas == 1


def test_a_target_without_a_scale_subresource_gets_failed_get_scale(cluster):
    cluster.create("configmaps", {"metadata": {"name": "web"}})
    autoscaler(cluster, kind="ConfigMap", api_version="v1")
    controller = HorizontalPodAutoscalerController(cluster.client, cluster.clock, cluster.informers)
    cluster.settle(controller)
    status, reason, message = conditions_of(cluster)["AbleToScale"]
    assert (status, reason) == ("False", "FailedGetScale")
    assert message.startswith("the HPA controller was unable to get the target's current scale: ")
    assert any(reason == "FailedGetScale" for reason, _ in events_of(cluster))


def test_no_metrics_makes_scaling_inactive(cluster):
    deployment_with_pods(cluster, 1, 200)
    cluster.registry.resource_metrics.remove_node("node-1")
    autoscaler(cluster)
    controller = HorizontalPodAutoscalerController(cluster.client, cluster.clock, cluster.informers)
    cluster.settle(controller)
    status, reason, message = conditions_of(cluster)["ScalingActive"]
    assert (status, reason) == ("False", "FailedGetResourceMetric")
    # The scale was read: Kubernetes says so beside the metrics failure.
    assert conditions_of(cluster)["AbleToScale"] == (
        "True", "SucceededGetScale", "the HPA controller was able to get the target's current scale")
    assert message == ("the HPA was unable to compute the replica count: failed to get cpu utilization: unable to "
                       "get metrics for resource cpu: no metrics returned from resource metrics API")
    assert cluster.get("deployments", "web").spec.replicas == 1


def test_autoscale_makes_an_hpa_for_a_deployment_and_refuses_a_pod(live):
    live.deployment("web")
    result = live.run("autoscale", "deployment/web", "--max", "4", "--cpu-percent", "60")
    assert result.code == 0 and result.out.strip() == "horizontalpodautoscaler.autoscaling/web autoscaled"
    hpa = live.registry.get("horizontalpodautoscalers", "default", "web")
    assert hpa["spec"]["scaleTargetRef"] == {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    row = live.run("get", "hpa").out.splitlines()
    assert row[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert row[1].split()[:7] == ["web", "Deployment/web", "cpu:", "<unknown>/60%", "1", "4", "0"]
    live.pod("lonely")
    refused = live.run("autoscale", "pod/lonely", "--max", "2")
    assert refused.code != 0 and "only deployments, replicasets and statefulsets" in refused.err


class UsageByPod(Usage):
    """A node's metrics source: each pod's millicores by its name."""

    def __init__(self, cluster, millicores_by_pod):
        super().__init__(cluster, 0)
        self.millicores_by_pod = millicores_by_pod

    def pod_metrics(self):
        return [PodMetrics(metadata=ObjectMeta(name=pod.metadata.name, namespace="default", uid=pod.metadata.uid),
                           timestamp=format_time(self.cluster.clock.now()), window="15s",
                           containers=[ContainerMetrics(name="main", usage={
                               "cpu": f"{self.millicores_by_pod[pod.metadata.name]}m", "memory": "10Mi"})])
                for pod in self.cluster.list("pods")]


def running_pod(cluster, name, labels):
    cluster.create("pods", {"metadata": {"name": name, "labels": labels}, "spec": {"containers": [
        {"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}})
    cluster.registry.patch_status("pods", "default", name, {"status": {
        "phase": "Running", "startTime": format_time(cluster.clock.now() - 3600),
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": format_time(cluster.clock.now() - 3600)}]}})


def workload(cluster, kind, replicas, selector, labels):
    resource = {"StatefulSet": "statefulsets", "ReplicaSet": "replicasets"}[kind]
    spec = {"replicas": replicas, "selector": selector, "template": {"metadata": {"labels": labels}, "spec": {
        "containers": [{"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}}}
    if kind == "StatefulSet":
        spec["serviceName"] = "web"
    cluster.create(resource, {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web"}, "spec": spec})
    return resource


@pytest.mark.parametrize("kind, selector, selector_text, labels, decoy_labels", [
    ("StatefulSet", {"matchLabels": {"app": "web"}}, "app=web", {"app": "web"}, {"app": "other"}),
    # A ReplicaSet's matchExpressions reach its /scale's selector text too.
    ("ReplicaSet", {"matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]},
     "app=web,tier in (front)", {"app": "web", "tier": "front"}, {"app": "web", "tier": "back"}),
])
def test_the_controller_scales_a_workload_counting_only_the_pods_its_scale_selector_picks(
        cluster, kind, selector, selector_text, labels, decoy_labels):
    resource = workload(cluster, kind, 2, selector, labels)
    usage = {"web-0": 100, "web-1": 100, "decoy-0": 5, "decoy-1": 5, "decoy-2": 5}
    for name in ("web-0", "web-1"):
        running_pod(cluster, name, labels)
    for name in ("decoy-0", "decoy-1", "decoy-2"):  # idle pods the selector does not pick
        running_pod(cluster, name, decoy_labels)
    cluster.registry.resource_metrics.add_node("node-1", UsageByPod(cluster, usage))
    scale = cluster.client.get_scale(resource, "web", "default")
    assert scale["status"]["selector"] == selector_text
    autoscaler(cluster, kind=kind)
    controller = HorizontalPodAutoscalerController(cluster.client, cluster.clock, cluster.informers)
    cluster.settle(controller)
    # The two picked pods use 100 % of their request against a 50 % target: 2 x 2 = 4 replicas.
    # Counting the idle decoys too would leave it at 2 (43 %).
    assert cluster.get(resource, "web").spec.replicas == 4
    status = cluster.get("horizontalpodautoscalers", "web").status
    assert (status.current_replicas, status.desired_replicas) == (2, 4)
    assert status.current_metrics[0].resource.current.average_utilization == 100
    assert ("SuccessfulRescale", "New size: 4; reason: cpu resource utilization (percentage of request) above target") \
        in events_of(cluster)
