"""The scheduler's default plugins on the fake cluster: taints and tolerations, node affinity,
pod (anti-)affinity, topology spreading, priorities with preemption, scheduling gates, and the
FailedScheduling messages kube-scheduler writes for each."""

from __future__ import annotations

import pytest

from controllers.scheduler import Scheduler

NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"


@pytest.fixture
def scheduler(cluster):
    return Scheduler(cluster.client, cluster.clock, cluster.informers)


def node(cluster, name, labels=None, taints=None, cpu="4", pods="110", memory="8Gi"):
    labels = {"kubernetes.io/hostname": name, **(labels or {})}
    return cluster.create("nodes", {
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints} if taints else {},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2027-01-15T08:00:00Z"}],
                   "allocatable": {"cpu": cpu, "memory": memory, "pods": pods}},
    }, namespace=None)


def pod(cluster, name, labels=None, cpu=None, namespace="default", **spec):
    container = {"name": "main", "image": "busybox"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    return cluster.create("pods", {"metadata": {"name": name, "labels": labels or {}},
                                   "spec": {"containers": [container], **spec}}, namespace=namespace)


def placed(cluster, name, namespace="default"):
    return cluster.get("pods", name, namespace).spec.node_name


def message(cluster, name):
    condition = cluster.get("pods", name).status.condition("PodScheduled")
    return condition.message if condition is not None else None


def term(key, operator, *values):
    requirement = {"key": key, "operator": operator}
    if values:
        requirement["values"] = list(values)
    return requirement


def required_node_affinity(*expressions, fields=()):
    selector_term = {}
    if expressions:
        selector_term["matchExpressions"] = list(expressions)
    if fields:
        selector_term["matchFields"] = list(fields)
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [selector_term]}}}


# --- taints and tolerations --------------------------------------------------------------------


def test_an_untolerated_no_schedule_taint_keeps_pods_off_and_is_named_in_the_message(cluster, scheduler):
    node(cluster, "gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    node(cluster, "small", cpu="1")
    pod(cluster, "big", cpu="2")
    cluster.settle(scheduler)
    assert placed(cluster, "big") is None
    assert message(cluster, "big") == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}. "
        f"preemption: 0/2 nodes are available: 1 {NO_VICTIMS}, 1 {NOT_HELPFUL}..")


@pytest.mark.parametrize("toleration", [
    {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
    {"key": "dedicated", "value": "gpu"},
    {"key": "dedicated", "operator": "Exists"},
    {"operator": "Exists"},
])
def test_a_matching_toleration_lets_a_pod_onto_a_tainted_node(cluster, scheduler, toleration):
    node(cluster, "gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    pod(cluster, "trainer", tolerations=[toleration])
    cluster.settle(scheduler)
    assert placed(cluster, "trainer") == "gpu"


@pytest.mark.parametrize("toleration", [
    {"key": "dedicated", "value": "cpu"},
    {"key": "dedicated", "operator": "Exists", "effect": "PreferNoSchedule"},
    {"key": "other", "operator": "Exists"},
])
def test_a_toleration_of_another_value_key_or_effect_does_not(cluster, scheduler, toleration):
    node(cluster, "gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    pod(cluster, "trainer", tolerations=[toleration])
    cluster.settle(scheduler)
    assert placed(cluster, "trainer") is None


def test_prefer_no_schedule_is_avoided_but_not_refused(cluster, scheduler):
    node(cluster, "a-tainted", taints=[{"key": "spot", "effect": "PreferNoSchedule"}])
    node(cluster, "b-plain")
    pod(cluster, "first")
    cluster.settle(scheduler)
    assert placed(cluster, "first") == "b-plain"
    cluster.registry.patch("nodes", None, "b-plain", {"spec": {"unschedulable": True}})
    pod(cluster, "second")
    cluster.settle(scheduler)
    assert placed(cluster, "second") == "a-tainted"


def test_a_cordoned_node_is_skipped_unless_the_pod_tolerates_unschedulable(cluster, scheduler):
    cluster.add_node("cordoned", unschedulable=True)
    pod(cluster, "plain")
    pod(cluster, "tolerant", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                           "effect": "NoSchedule"}])
    cluster.settle(scheduler)
    assert placed(cluster, "plain") is None
    assert placed(cluster, "tolerant") == "cordoned"


# --- node affinity -----------------------------------------------------------------------------


@pytest.mark.parametrize(("requirement", "expected"), [
    (term("disk", "In", "ssd", "nvme"), "ssd"),
    (term("disk", "NotIn", "ssd"), "hdd"),
    (term("gpu", "Exists"), "hdd"),
    (term("gpu", "DoesNotExist"), "ssd"),
    (term("cores", "Gt", "8"), "ssd"),
    (term("cores", "Lt", "8"), "hdd"),
])
def test_required_node_affinity_operators(cluster, scheduler, requirement, expected):
    node(cluster, "ssd", labels={"disk": "ssd", "cores": "16"})
    node(cluster, "hdd", labels={"disk": "hdd", "cores": "4", "gpu": "yes"})
    pod(cluster, "web", affinity=required_node_affinity(requirement))
    cluster.settle(scheduler)
    assert placed(cluster, "web") == expected


def test_match_fields_selects_a_node_by_name(cluster, scheduler):
    node(cluster, "one")
    node(cluster, "two")
    pod(cluster, "web", affinity=required_node_affinity(fields=[term("metadata.name", "In", "two")]))
    cluster.settle(scheduler)
    assert placed(cluster, "web") == "two"


def test_node_terms_are_ored_and_node_selector_must_hold_too(cluster, scheduler):
    node(cluster, "a", labels={"zone": "a"})
    node(cluster, "b", labels={"zone": "b", "disk": "ssd"})
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [term("zone", "In", "a")]}, {"matchExpressions": [term("zone", "In", "b")]}]}}}
    pod(cluster, "web", affinity=affinity, nodeSelector={"disk": "ssd"})
    cluster.settle(scheduler)
    assert placed(cluster, "web") == "b"


def test_self_contradicting_node_affinity_is_accepted_and_reported_as_failed_scheduling(cluster, scheduler):
    node(cluster, "a", labels={"disk": "ssd"})
    pod(cluster, "never", affinity=required_node_affinity(term("disk", "In", "ssd"), term("disk", "NotIn", "ssd")))
    cluster.settle(scheduler)
    assert message(cluster, "never") == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
        f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}..")
    (event,) = [e for e in cluster.list("events") if e.reason == "FailedScheduling"]
    assert event.message == message(cluster, "never")


def test_preferred_node_affinity_picks_the_heaviest_matching_node(cluster, scheduler):
    node(cluster, "a", labels={"zone": "a"})
    node(cluster, "b", labels={"zone": "b"})
    node(cluster, "c", labels={"zone": "c"})
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [term("zone", "In", "a")]}},
        {"weight": 80, "preference": {"matchExpressions": [term("zone", "In", "c")]}}]}}
    pod(cluster, "web", affinity=affinity)
    cluster.settle(scheduler)
    assert placed(cluster, "web") == "c"


# --- pod affinity and anti-affinity -----------------------------------------------------------


def anti_affinity(app, key="kubernetes.io/hostname"):
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}


def test_required_anti_affinity_puts_one_replica_per_node_then_refuses(cluster, scheduler):
    for name in ("n1", "n2", "n3"):
        node(cluster, name)
    for index in range(4):
        pod(cluster, f"web-{index}", labels={"app": "web"}, affinity=anti_affinity("web"))
        cluster.settle(scheduler)
    nodes = [placed(cluster, f"web-{index}") for index in range(3)]
    assert sorted(nodes) == ["n1", "n2", "n3"]
    assert placed(cluster, "web-3") is None
    assert message(cluster, "web-3") == (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
        f"preemption: 0/3 nodes are available: 3 {NO_VICTIMS}..")


def test_an_existing_pods_anti_affinity_keeps_matching_pods_away(cluster, scheduler):
    node(cluster, "n1")
    node(cluster, "n2")
    pod(cluster, "loner", labels={"app": "loner"}, nodeName="n1", affinity=anti_affinity("web"))
    pod(cluster, "web", labels={"app": "web"})
    cluster.settle(scheduler)
    assert placed(cluster, "web") == "n2"
    cluster.registry.patch("nodes", None, "n2", {"spec": {"unschedulable": True}})
    pod(cluster, "web-2", labels={"app": "web"})
    cluster.settle(scheduler)
    assert message(cluster, "web-2").startswith(
        "0/2 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules, "
        "1 node(s) were unschedulable.")


def test_required_pod_affinity_follows_the_matching_pods_zone(cluster, scheduler):
    node(cluster, "a1", labels={"topology.kubernetes.io/zone": "a"})
    node(cluster, "b1", labels={"topology.kubernetes.io/zone": "b"})
    node(cluster, "b2", labels={"topology.kubernetes.io/zone": "b"})
    pod(cluster, "cache", labels={"app": "cache"}, nodeName="b2")
    affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "topology.kubernetes.io/zone"}]}}
    for index in range(3):
        pod(cluster, f"web-{index}", labels={"app": "web"}, affinity=affinity)
    cluster.settle(scheduler)
    assert {placed(cluster, f"web-{index}") for index in range(3)} <= {"b1", "b2"}


def test_pod_affinity_with_no_matching_pod_is_unresolvable_unless_the_pod_matches_itself(cluster, scheduler):
    node(cluster, "n1")
    lonely = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    pod(cluster, "web", labels={"app": "web"}, affinity=lonely)
    pod(cluster, "db", labels={"app": "db"}, affinity=lonely)
    cluster.settle(scheduler)
    assert placed(cluster, "db") == "n1", "the first pod of a group matching its own term may go anywhere"
    assert message(cluster, "web") in (None, "0/1 nodes are available: 1 node(s) didn't match pod affinity rules. "
                                             f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}..")
    cluster.settle(scheduler)
    assert placed(cluster, "web") == "n1", "once db runs, web follows it"


def test_affinity_terms_look_in_the_namespaces_they_name(cluster, scheduler):
    node(cluster, "n1")
    node(cluster, "n2")
    cluster.create("namespaces", {"metadata": {"name": "other", "labels": {"team": "x"}}}, namespace=None)
    pod(cluster, "db", labels={"app": "db"}, namespace="other", nodeName="n2")
    for name, term_fields in (("by-list", {"namespaces": ["other"]}),
                              ("by-selector", {"namespaceSelector": {"matchLabels": {"team": "x"}}})):
        affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname", **term_fields}]}}
        pod(cluster, name, affinity=affinity)
    cluster.settle(scheduler)
    assert placed(cluster, "by-list") == "n2"
    assert placed(cluster, "by-selector") == "n2"


def test_preferred_anti_affinity_spreads_without_refusing(cluster, scheduler):
    node(cluster, "n1")
    node(cluster, "n2")
    preferred = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                            "topologyKey": "kubernetes.io/hostname"}}]}}
    for index in range(3):
        pod(cluster, f"web-{index}", labels={"app": "web"}, affinity=preferred)
        cluster.settle(scheduler)
    nodes = [placed(cluster, f"web-{index}") for index in range(3)]
    assert sorted(nodes[:2]) == ["n1", "n2"] and nodes[2] in ("n1", "n2")


# --- topology spread ---------------------------------------------------------------------------


def spread(max_skew=1, key="topology.kubernetes.io/zone", when="DoNotSchedule", **extra):
    return [{"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
             "labelSelector": {"matchLabels": {"app": "web"}}, **extra}]


def zones(cluster):
    node(cluster, "a1", labels={"topology.kubernetes.io/zone": "a"})
    node(cluster, "a2", labels={"topology.kubernetes.io/zone": "a"})
    node(cluster, "b1", labels={"topology.kubernetes.io/zone": "b"})


def test_do_not_schedule_spread_keeps_zones_within_max_skew(cluster, scheduler):
    zones(cluster)
    for index in range(4):
        pod(cluster, f"web-{index}", labels={"app": "web"}, topologySpreadConstraints=spread())
        cluster.settle(scheduler)
    per_zone = {"a": 0, "b": 0}
    for index in range(4):
        per_zone["b" if placed(cluster, f"web-{index}") == "b1" else "a"] += 1
    assert per_zone == {"a": 2, "b": 2}


def test_a_full_zone_makes_spread_refuse_with_kube_schedulers_reason(cluster, scheduler):
    zones(cluster)
    pod(cluster, "web-0", labels={"app": "web"}, nodeName="a1")
    pod(cluster, "web-1", labels={"app": "web"}, nodeName="a2")
    cluster.registry.patch("nodes", None, "b1", {"spec": {"unschedulable": True}})
    pod(cluster, "web-2", labels={"app": "web"}, topologySpreadConstraints=spread())
    cluster.settle(scheduler)
    assert message(cluster, "web-2") == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match pod topology spread "
        f"constraints. preemption: 0/3 nodes are available: 1 {NOT_HELPFUL}, 2 {NO_VICTIMS}..")


def test_a_node_without_the_topology_key_is_unresolvable_for_spread(cluster, scheduler):
    node(cluster, "plain")
    pod(cluster, "web", labels={"app": "web"}, topologySpreadConstraints=spread())
    cluster.settle(scheduler)
    assert message(cluster, "web") == (
        "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label). "
        f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}..")


def test_min_domains_counts_missing_domains_as_empty(cluster, scheduler):
    node(cluster, "a1", labels={"topology.kubernetes.io/zone": "a"})
    pod(cluster, "web-0", labels={"app": "web"}, nodeName="a1")
    pod(cluster, "web-1", labels={"app": "web"}, topologySpreadConstraints=spread(minDomains=2))
    pod(cluster, "other", labels={"app": "web"}, topologySpreadConstraints=spread())
    cluster.settle(scheduler)
    assert placed(cluster, "web-1") is None, "one domain of two: the global minimum is 0, skew would be 2"
    assert placed(cluster, "other") == "a1", "without minDomains the one zone is its own minimum"


def test_the_default_constraints_spread_a_replica_sets_pods_over_a_bigger_node(cluster, scheduler):
    node(cluster, "n1", cpu="64", memory="128Gi")  # LeastAllocated alone would put every pod here
    node(cluster, "n2")
    node(cluster, "n3")
    cluster.replica_set("web", 0)
    for index in range(6):
        pod(cluster, f"web-{index}", labels={"app": "web"})
        cluster.settle(scheduler)
    counts: dict[str, int] = {}
    for index in range(6):
        counts[placed(cluster, f"web-{index}")] = counts.get(placed(cluster, f"web-{index}"), 0) + 1
    assert counts == {"n1": 2, "n2": 2, "n3": 2}


def test_pods_nothing_selects_go_where_most_is_free(cluster, scheduler):
    node(cluster, "n1", cpu="64", memory="128Gi")
    node(cluster, "n2")
    for index in range(3):
        pod(cluster, f"loose-{index}", labels={"app": "loose"})
        cluster.settle(scheduler)
    assert {placed(cluster, f"loose-{index}") for index in range(3)} == {"n1"}


def test_schedule_anyway_spread_prefers_the_emptier_zone(cluster, scheduler):
    zones(cluster)
    pod(cluster, "web-0", labels={"app": "web"}, nodeName="a1")
    pod(cluster, "web-1", labels={"app": "web"}, topologySpreadConstraints=spread(when="ScheduleAnyway"))
    cluster.settle(scheduler)
    assert placed(cluster, "web-1") == "b1"


# --- priority and preemption -------------------------------------------------------------------


def priority_class(cluster, name, value, **extra):
    return cluster.create("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                              "metadata": {"name": name}, "value": value, **extra}, namespace=None)


def test_pending_pods_are_tried_highest_priority_first_then_in_arrival_order(cluster, scheduler):
    priority_class(cluster, "low", 10)
    priority_class(cluster, "high", 1000)
    node(cluster, "n1", cpu="2")
    for name in ("low-1", "low-2"):
        pod(cluster, name, cpu="1", priorityClassName="low")
        cluster.clock.advance(1)
    pod(cluster, "urgent", cpu="1", priorityClassName="high")

    cluster.settle(scheduler)

    assert [placed(cluster, name) for name in ("urgent", "low-1", "low-2")] == ["n1", "n1", None]
    assert cluster.client.calls_of("delete", "pods") == [], "the urgent pod found room without preempting"


def test_a_higher_priority_pod_preempts_the_lowest_and_is_nominated(cluster, scheduler):
    priority_class(cluster, "low", 10)
    priority_class(cluster, "high", 1000)
    node(cluster, "n1", cpu="2")
    pod(cluster, "low-1", cpu="1", priorityClassName="low")
    pod(cluster, "low-2", cpu="1", priorityClassName="low")
    cluster.settle(scheduler)
    urgent = pod(cluster, "urgent", cpu="1", priorityClassName="high")
    cluster.settle(scheduler)

    assert cluster.get("pods", "urgent").status.nominated_node_name == "n1"
    deleted = [c.name for c in cluster.client.calls_of("delete", "pods")]
    assert len(deleted) == 1 and deleted[0] in ("low-1", "low-2")
    victim = cluster.get("pods", deleted[0])
    assert victim.metadata.deletion_timestamp is not None
    target = victim.status.condition("DisruptionTarget")
    assert (target.status, target.reason) == ("True", "PreemptionByScheduler")
    preempted = [e for e in cluster.list("events") if e.reason == "Preempted"]
    assert [e.message for e in preempted] == [f"Preempted by pod {urgent.metadata.uid} on node n1"]

    pod(cluster, "same-as-low", cpu="1", priorityClassName="low")
    cluster.settle(scheduler)
    cluster.registry.delete("pods", "default", deleted[0], grace_period_seconds=0)
    cluster.clock.advance(1)  # both pending pods wait out their back-off; the urgent one goes first
    cluster.settle(scheduler)
    assert placed(cluster, "urgent") == "n1"
    assert placed(cluster, "same-as-low") is None, "the nominated pod's room is not taken by a lower one"


def test_preemption_takes_as_few_and_as_unimportant_victims_as_it_can(cluster, scheduler):
    priority_class(cluster, "p1", 1)
    priority_class(cluster, "p5", 5)
    priority_class(cluster, "p9", 9)
    priority_class(cluster, "top", 100)
    node(cluster, "n1", cpu="3")
    node(cluster, "n2", cpu="3")
    pod(cluster, "n1-p5", cpu="2", priorityClassName="p5", nodeName="n1")
    pod(cluster, "n1-p1", cpu="1", priorityClassName="p1", nodeName="n1")
    pod(cluster, "n2-p9", cpu="3", priorityClassName="p9", nodeName="n2")
    pod(cluster, "top", cpu="1", priorityClassName="top")
    cluster.settle(scheduler)
    assert [c.name for c in cluster.client.calls_of("delete", "pods")] == ["n1-p1"]


def test_a_pdb_steers_preemption_to_pods_it_does_not_protect(cluster, scheduler):
    priority_class(cluster, "low", 1)
    priority_class(cluster, "high", 100)
    node(cluster, "n1", cpu="1")
    node(cluster, "n2", cpu="1")
    pod(cluster, "guarded", labels={"app": "db"}, cpu="1", priorityClassName="low", nodeName="n1")
    pod(cluster, "free", labels={"app": "batch"}, cpu="1", priorityClassName="low", nodeName="n2")
    cluster.create("poddisruptionbudgets", {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                            "metadata": {"name": "db"},
                                            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})
    pod(cluster, "urgent", cpu="1", priorityClassName="high")
    cluster.settle(scheduler)
    assert [c.name for c in cluster.client.calls_of("delete", "pods")] == ["free"]


def test_preemption_policy_never_waits_instead(cluster, scheduler):
    priority_class(cluster, "polite", 100, preemptionPolicy="Never")
    node(cluster, "n1", cpu="1")
    pod(cluster, "busy", cpu="1", nodeName="n1")
    pod(cluster, "polite", cpu="1", priorityClassName="polite")
    cluster.settle(scheduler)
    assert cluster.client.calls_of("delete", "pods") == []
    assert message(cluster, "polite") == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never..")


def test_equal_priority_is_never_preempted(cluster, scheduler):
    node(cluster, "n1", cpu="1")
    pod(cluster, "busy", cpu="1", nodeName="n1")
    pod(cluster, "same", cpu="1")
    cluster.settle(scheduler)
    assert cluster.client.calls_of("delete", "pods") == []
    assert message(cluster, "same").endswith(f"preemption: 0/1 nodes are available: 1 {NO_VICTIMS}..")


# --- scheduling gates --------------------------------------------------------------------------


def test_a_gated_pod_waits_with_scheduling_gated_until_its_gates_are_removed(cluster, scheduler):
    node(cluster, "n1")
    pod(cluster, "gated", schedulingGates=[{"name": "example.com/quota"}])
    cluster.settle(scheduler)
    gated = cluster.get("pods", "gated")
    assert gated.spec.node_name is None
    condition = gated.status.condition("PodScheduled")
    assert (condition.status, condition.reason, condition.message) == (
        "False", "SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates")
    assert not [e for e in cluster.list("events") if e.reason == "FailedScheduling"]
    cluster.registry.patch("pods", "default", "gated", {"spec": {"schedulingGates": None}})
    cluster.settle(scheduler)
    assert placed(cluster, "gated") == "n1"
