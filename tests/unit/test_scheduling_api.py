"""The scheduling fields of the API: validation of affinity, tolerations, taints, spread
constraints and gates with Kubernetes' messages; PriorityClass and PodDisruptionBudget rules;
and the Priority and DefaultTolerationSeconds admission steps of pod creation."""

from __future__ import annotations

import pytest

from minikube_py import api
from minikube_py.api import errors

REQUIRED_NODE = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"


def pod_body(**spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}


def problems(**spec):
    try:
        api.parse_object(pod_body(**spec))
    except errors.Invalid as error:
        return [f"{path}: {message}" for path, message in error.errors]
    return []


def node_affinity(*expressions):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]}}}


@pytest.mark.parametrize(("spec", "expected"), [
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}},
     f"{REQUIRED_NODE}.nodeSelectorTerms: Required value: must have at least one node selector term"),
    ({"affinity": node_affinity({"key": "disk", "operator": "In"})},
     f"{REQUIRED_NODE}.nodeSelectorTerms[0].matchExpressions[0].values: Required value: "
     "must be specified when `operator` is 'In' or 'NotIn'"),
    ({"affinity": node_affinity({"key": "disk", "operator": "Exists", "values": ["x"]})},
     f"{REQUIRED_NODE}.nodeSelectorTerms[0].matchExpressions[0].values: Forbidden: "
     "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
    ({"affinity": node_affinity({"key": "cores", "operator": "Gt", "values": ["1", "2"]})},
     f"{REQUIRED_NODE}.nodeSelectorTerms[0].matchExpressions[0].values: Required value: "
     "must be specified single value when `operator` is 'Lt' or 'Gt'"),
    ({"affinity": node_affinity({"key": "disk", "operator": "Like", "values": ["x"]})},
     f'{REQUIRED_NODE}.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: "Like": '
     "not a valid selector operator"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.labels", "operator": "In", "values": ["a"]}]}]}}}},
     f'{REQUIRED_NODE}.nodeSelectorTerms[0].matchFields[0].key: Invalid value: "metadata.labels": '
     "not a valid field selector key"),
    ({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 0, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}]}}},
     "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "
     "Invalid value: 0: must be in the range 1-100"),
    ({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}}]}}},
     "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: "
     "Required value: can not be empty"),
    ({"tolerations": [{"operator": "Equal", "value": "x"}]},
     'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, '
     'which means "match all values and all keys"'),
    ({"tolerations": [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}]},
     "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
     "`tolerationSeconds` is set"),
    ({"tolerations": [{"key": "a", "operator": "Maybe"}]},
     'spec.tolerations[0].operator: Unsupported value: "Maybe": supported values: "Equal", "Exists"'),
    ({"tolerations": [{"key": "a", "operator": "Exists", "effect": "Sometimes"}]},
     'spec.tolerations[0].effect: Unsupported value: "Sometimes": supported values: '
     '"NoSchedule", "PreferNoSchedule", "NoExecute"'),
    ({"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
     "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero"),
    ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                                     "minDomains": 2}]},
     "spec.topologySpreadConstraints[0].minDomains: Invalid value: 2: can only use minDomains if "
     "whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway"),
    ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                                    {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
     'spec.topologySpreadConstraints[1].{topologyKey, whenUnsatisfiable}: Duplicate value: "zone, DoNotSchedule"'),
    ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Whenever"}]},
     'spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Whenever": supported values: '
     '"DoNotSchedule", "ScheduleAnyway"'),
    ({"schedulingGates": [{"name": "a"}, {"name": "a"}]}, 'spec.schedulingGates[1].name: Duplicate value: "a"'),
    ({"schedulingGates": [{"name": "a"}], "nodeName": "n1"},
     "spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared"),
    ({"preemptionPolicy": "Sometimes"},
     'spec.preemptionPolicy: Unsupported value: "Sometimes": supported values: "PreemptLowerPriority", "Never"'),
])
def test_scheduling_fields_are_validated_with_kubernetes_messages(spec, expected):
    assert expected in problems(**spec)


def test_well_formed_scheduling_fields_are_accepted():
    spec = {
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}],
                 "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname",
                "namespaceSelector": {}}}]}},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoExecute",
                         "tolerationSeconds": 60}, {"operator": "Exists"}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "DoNotSchedule", "minDomains": 3,
                                       "labelSelector": {"matchLabels": {"app": "web"}}}],
        "schedulingGates": [{"name": "example.com/gate"}],
        "priorityClassName": "high",
    }
    assert problems(**spec) == []


def test_node_taints_are_validated():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"},
                                {"key": "b", "effect": "Never"}]}}
    with pytest.raises(errors.Invalid) as raised:
        api.parse_object(node)
    rendered = [f"{path}: {message}" for path, message in raised.value.errors]
    assert "spec.taints[1]: Duplicate value: a=:NoSchedule: taints must be unique by key and effect pair" in rendered
    assert ('spec.taints[2].effect: Unsupported value: "Never": supported values: '
            '"NoSchedule", "PreferNoSchedule", "NoExecute"') in rendered


def test_tolerations_may_be_added_to_a_pod_and_gates_only_removed(cluster):
    cluster.add_node("n1")
    cluster.create("pods", {"metadata": {"name": "web"}, "spec": {
        "containers": [{"name": "main", "image": "busybox"}], "schedulingGates": [{"name": "a"}, {"name": "b"}]}})
    tolerations = cluster.get("pods", "web").spec.model_dump(by_alias=True, exclude_none=True)["tolerations"]
    cluster.registry.patch("pods", "default", "web", {"spec": {"tolerations": [*tolerations, {"operator": "Exists"}]}})
    cluster.registry.patch("pods", "default", "web", {"spec": {"schedulingGates": [{"name": "a"}]}})
    with pytest.raises(errors.Invalid, match="only deletion is allowed, but found new scheduling gate 'c'"):
        cluster.registry.patch("pods", "default", "web", {"spec": {"schedulingGates": [{"name": "a"}, {"name": "c"}]}})
    with pytest.raises(errors.Invalid, match="pod updates may not change fields"):
        cluster.registry.patch("pods", "default", "web", {"spec": {"tolerations": [{"operator": "Exists"}]}})


# --- PriorityClass and priority admission -------------------------------------------------------


def priority_class(cluster, name, value, **extra):
    return cluster.registry.create("priorityclasses", None, {
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
        "value": value, **extra})


def create_pod(cluster, name="web", **spec):
    return cluster.registry.create("pods", "default", {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "main", "image": "busybox"}], **spec}})


def test_the_system_classes_exist_from_the_start(cluster):
    classes = {item["metadata"]["name"]: item["value"] for item in cluster.registry.list("priorityclasses")["items"]}
    assert classes == {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}


def test_a_pod_gets_its_classes_priority_and_policy(cluster):
    priority_class(cluster, "high", 1000, preemptionPolicy="Never")
    spec = create_pod(cluster, priorityClassName="high")["spec"]
    assert (spec["priority"], spec["preemptionPolicy"]) == (1000, "Never")
    assert create_pod(cluster, "critical", priorityClassName="system-node-critical")["spec"]["priority"] == 2000001000


def test_without_a_class_a_pod_gets_the_global_default_or_zero(cluster):
    assert create_pod(cluster, "plain")["spec"]["priority"] == 0
    priority_class(cluster, "normal", 500, globalDefault=True)
    spec = create_pod(cluster, "defaulted")["spec"]
    assert (spec["priority"], spec["priorityClassName"]) == (500, "normal")


def test_priority_admission_refuses_unknown_classes_and_mismatched_priorities(cluster):
    with pytest.raises(errors.ApiError) as missing:
        create_pod(cluster, priorityClassName="nope")
    assert (missing.value.code, missing.value.message) == (
        403, 'pods "web" is forbidden: no PriorityClass with name nope was found')
    with pytest.raises(errors.ApiError) as mismatch:
        create_pod(cluster, priority=7)
    assert mismatch.value.message == (
        'pods "web" is forbidden: the integer value of priority (7) must not be provided in pod spec; '
        "priority admission controller computed 0 from the given PriorityClass name")


def test_only_one_priority_class_may_be_the_global_default(cluster):
    priority_class(cluster, "first", 1, globalDefault=True)
    with pytest.raises(errors.ApiError) as second:
        priority_class(cluster, "second", 2, globalDefault=True)
    assert second.value.code == 403
    assert "PriorityClass first is already marked as default. Only one default can exist" in second.value.message


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("too-high", 1_000_000_001, "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"),
    ("system-mine", 5, "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for "
                       "system use only. error: system-mine is not a known system priority class"),
])
def test_priority_class_values_and_names_are_validated(cluster, name, value, expected):
    with pytest.raises(errors.Invalid) as raised:
        priority_class(cluster, name, value)
    assert expected in [f"{path}: {message}" for path, message in raised.value.errors]


def test_a_priority_class_value_cannot_change(cluster):
    priority_class(cluster, "high", 10)
    with pytest.raises(errors.Invalid, match="value: Forbidden: may not be changed in an update."):
        cluster.registry.patch("priorityclasses", None, "high", {"value": 11})


# --- DefaultTolerationSeconds --------------------------------------------------------------------


def test_pods_get_not_ready_and_unreachable_tolerations_of_300_seconds(cluster):
    tolerations = create_pod(cluster)["spec"]["tolerations"]
    assert tolerations == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]


def test_the_default_toleration_seconds_are_the_clusters_own(cluster):
    from minikube_py.apiserver.scheduling_admission import DefaultTolerationSeconds

    cluster.registry.default_tolerations = DefaultTolerationSeconds(not_ready=30, unreachable=20)
    tolerations = create_pod(cluster)["spec"]["tolerations"]
    assert {t["key"]: t["tolerationSeconds"] for t in tolerations} == {
        "node.kubernetes.io/not-ready": 30, "node.kubernetes.io/unreachable": 20}


def test_a_pod_tolerating_those_taints_itself_keeps_its_own(cluster):
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    tolerations = create_pod(cluster, tolerations=[own])["spec"]["tolerations"]
    assert own in tolerations and len(tolerations) == 2
    assert create_pod(cluster, "everything", tolerations=[{"operator": "Exists"}])["spec"]["tolerations"] == [
        {"operator": "Exists"}]


# --- PodDisruptionBudget ---------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ({"minAvailable": 1, "maxUnavailable": 1}, "minAvailable and maxUnavailable cannot be both set"),
    ({"minAvailable": "120%"}, 'spec.minAvailable: Invalid value: "120%": must not be greater than 100%'),
    ({"maxUnavailable": -1}, "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"),
])
def test_pod_disruption_budgets_are_validated(cluster, spec, expected):
    with pytest.raises(errors.Invalid) as raised:
        cluster.registry.create("poddisruptionbudgets", "default", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
            "spec": {"selector": {"matchLabels": {"app": "db"}}, **spec}})
    assert any(expected in f"{path}: {message}" for path, message in raised.value.errors)
