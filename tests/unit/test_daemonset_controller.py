"""DaemonSet controller: sync driven by hand against the real API in memory (tests/unit/fakes.py)."""

from __future__ import annotations

import pytest

from minikube_py import api
from minikube_py.api.printers import PRINTERS
from controllers.daemonset import DaemonSetController, target_node_name

TOLERATION_KEYS = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
                   "node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
                   "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable"]


@pytest.fixture
def controller(cluster):
    return DaemonSetController(cluster.client, cluster.clock, cluster.informers)


def daemon_set(cluster, name="agent", strategy=None, node_selector=None, tolerations=None, image="busybox",
               min_ready_seconds=0, history_limit=None):
    pod_spec: dict = {"containers": [{"name": "main", "image": image}]}
    if node_selector is not None:
        pod_spec["nodeSelector"] = node_selector
    if tolerations is not None:
        pod_spec["tolerations"] = tolerations
    spec: dict = {"selector": {"matchLabels": {"app": name}}, "minReadySeconds": min_ready_seconds,
                  "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}
    if strategy is not None:
        spec["updateStrategy"] = strategy
    if history_limit is not None:
        spec["revisionHistoryLimit"] = history_limit
    return cluster.create("daemonsets", {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                                         "spec": spec})


def pods_by_node(cluster, include_deleting=False):
    """node -> sorted pod names, of the pods not being deleted."""
    found: dict[str, list[str]] = {}
    for pod in cluster.list("pods"):
        if pod.metadata.deletion_timestamp is None or include_deleting:
            found.setdefault(target_node_name(pod) or "", []).append(pod.metadata.name)
    return {node: sorted(names) for node, names in found.items()}


def schedule(cluster):
    """What the scheduler does with a DaemonSet pod: bind it to the node its affinity names."""
    for pod in cluster.list("pods"):
        if not pod.spec.node_name and pod.metadata.deletion_timestamp is None:
            cluster.registry.bind("default", pod.metadata.name, target_node_name(pod))


def make_ready(cluster, ready=True):
    schedule(cluster)
    for pod in cluster.list("pods"):
        if pod.metadata.deletion_timestamp is None and pod.status.phase != "Running" or not ready:
            cluster.set_pod_status(pod.metadata.name, phase="Running", ready=ready)


def finish_deletions(cluster):
    """What the node agents do: pods being deleted go away."""
    for pod in cluster.list("pods"):
        if pod.metadata.deletion_timestamp is not None:
            cluster.registry.delete("pods", "default", pod.metadata.name, grace_period_seconds=0)


def set_image(cluster, name, image):
    current = cluster.registry.get("daemonsets", "default", name)
    current["spec"]["template"]["spec"]["containers"][0]["image"] = image
    cluster.registry.replace("daemonsets", "default", name, current)


def status(cluster, name="agent"):
    return cluster.registry.get("daemonsets", "default", name)["status"]


def images_by_node(cluster):
    return {target_node_name(pod): pod.spec.containers[0].image for pod in cluster.list("pods")
            if pod.metadata.deletion_timestamp is None}


def test_each_node_gets_one_pod_bound_by_node_name_affinity_with_the_daemon_tolerations(cluster, controller):
    for name in ("node-1", "node-2", "node-3"):
        cluster.add_node(name)
    made = daemon_set(cluster, tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                             "effect": "NoExecute", "tolerationSeconds": 300}])
    cluster.settle(controller)
    assert {node: len(names) for node, names in pods_by_node(cluster).items()} == {"node-1": 1, "node-2": 1, "node-3": 1}
    pod = cluster.list("pods")[0]
    assert pod.metadata.name.startswith("agent-")
    reference = pod.metadata.owner_references[0]
    assert (reference.kind, reference.name, reference.uid, reference.controller) == ("DaemonSet", "agent",
                                                                                     made.metadata.uid, True)
    terms = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
    assert [term.to_dict() for term in terms] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [target_node_name(pod)]}]}]
    assert pod.spec.node_name is None  # the scheduler binds it
    tolerations = pod.spec.tolerations
    assert [toleration.key for toleration in tolerations] == TOLERATION_KEYS
    # The template's not-ready toleration with tolerationSeconds is replaced by one without (forever).
    assert tolerations[0].toleration_seconds is None and tolerations[0].effect == "NoExecute"
    assert [toleration.effect for toleration in tolerations[2:]] == ["NoSchedule"] * 4
    labels = pod.metadata.labels
    assert labels["pod-template-generation"] == "1" and labels["controller-revision-hash"]
    assert status(cluster) == {"currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberMisscheduled": 0,
                               "numberReady": 0, "numberUnavailable": 3, "observedGeneration": 1,
                               "updatedNumberScheduled": 3}
    make_ready(cluster)
    cluster.settle(controller)
    assert status(cluster) == {"currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberMisscheduled": 0,
                               "numberReady": 3, "numberAvailable": 3, "observedGeneration": 1,
                               "updatedNumberScheduled": 3}


def test_a_lagging_cache_does_not_make_a_second_pod_for_a_node(cluster, controller):
    cluster.add_node("node-1")
    daemon_set(cluster)
    cluster.refresh()
    controller.sync("default/agent")
    controller.sync("default/agent")  # the cache has not seen the pod yet: expectations hold it back
    assert len(cluster.list("pods")) == 1
    cluster.settle(controller)
    assert len(cluster.list("pods")) == 1


def test_node_selector_and_affinity_choose_nodes_and_a_relabelled_node_gains_or_loses_its_pod(cluster, controller):
    cluster.add_node("node-1", labels={"disk": "ssd"})
    cluster.add_node("node-2", labels={"disk": "hdd"})
    daemon_set(cluster, node_selector={"disk": "ssd"})
    cluster.settle(controller)
    assert list(pods_by_node(cluster)) == ["node-1"]
    node = cluster.registry.get("nodes", None, "node-2")
    node["metadata"]["labels"]["disk"] = "ssd"
    cluster.registry.replace("nodes", None, "node-2", node)
    cluster.settle(controller)
    assert sorted(pods_by_node(cluster)) == ["node-1", "node-2"]
    node = cluster.registry.get("nodes", None, "node-1")
    node["metadata"]["labels"]["disk"] = "hdd"
    cluster.registry.replace("nodes", None, "node-1", node)
    cluster.settle(controller)
    assert sorted(pods_by_node(cluster)) == ["node-2"]
    assert status(cluster)["desiredNumberScheduled"] == 1


def test_a_required_node_affinity_term_selects_nodes_and_is_replaced_by_the_node_name_on_the_pod(cluster, controller):
    cluster.add_node("node-1", labels={"zone": "a"})
    cluster.add_node("node-2", labels={"zone": "b"})
    made = daemon_set(cluster)
    body = cluster.registry.get("daemonsets", "default", "agent")
    body["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}
    cluster.registry.replace("daemonsets", "default", "agent", body)
    assert made.metadata.uid == cluster.get("daemonsets", "agent").metadata.uid
    cluster.settle(controller)
    assert list(pods_by_node(cluster)) == ["node-2"]
    terms = cluster.list("pods")[0].spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    assert terms.to_dict() == {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["node-2"]}]}]}


def test_taints_keep_new_pods_off_but_only_noexecute_removes_a_running_one(cluster, controller):
    cluster.add_node("node-1")
    daemon_set(cluster)
    cluster.settle(controller)
    assert list(pods_by_node(cluster)) == ["node-1"]
    node = cluster.registry.get("nodes", None, "node-1")
    node["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    cluster.registry.replace("nodes", None, "node-1", node)
    cluster.settle(controller)
    assert list(pods_by_node(cluster)) == ["node-1"]  # NoSchedule: the pod there may stay
    assert status(cluster)["desiredNumberScheduled"] == 0 and status(cluster)["numberMisscheduled"] == 1
    cluster.add_node("node-2")
    node2 = cluster.registry.get("nodes", None, "node-2")
    node2["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    cluster.registry.replace("nodes", None, "node-2", node2)
    cluster.settle(controller)
    assert list(pods_by_node(cluster)) == ["node-1"]  # but no new pod on a NoSchedule node
    node["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]
    node["metadata"].pop("resourceVersion")
    cluster.registry.replace("nodes", None, "node-1", node)
    cluster.settle(controller)
    assert pods_by_node(cluster) == {}


def test_the_automatic_tolerations_run_pods_on_cordoned_not_ready_and_pressured_nodes(cluster, controller):
    cordoned = cluster.add_node("node-1", unschedulable=True)
    node = cluster.registry.get("nodes", None, cordoned.metadata.name)
    node["spec"]["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                              {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                              {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}]
    cluster.registry.replace("nodes", None, "node-1", node)
    cluster.add_node("node-2")
    node2 = cluster.registry.get("nodes", None, "node-2")
    node2["spec"]["taints"] = [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]
    cluster.registry.replace("nodes", None, "node-2", node2)
    daemon_set(cluster)
    cluster.settle(controller)
    # network-unavailable is only tolerated by hostNetwork pods, as in Kubernetes.
    assert list(pods_by_node(cluster)) == ["node-1"]


def test_a_pod_with_a_user_toleration_runs_on_a_tainted_node(cluster, controller):
    cluster.add_node("node-1")
    node = cluster.registry.get("nodes", None, "node-1")
    node["spec"]["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    cluster.registry.replace("nodes", None, "node-1", node)
    daemon_set(cluster, tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                      "effect": "NoSchedule"}])
    cluster.settle(controller)
    assert list(pods_by_node(cluster)) == ["node-1"]
    assert len(cluster.list("pods")[0].spec.tolerations) == 7


def test_a_new_node_gets_a_pod_and_an_unscheduled_pod_for_a_removed_node_is_deleted(cluster, controller):
    cluster.add_node("node-1")
    daemon_set(cluster)
    cluster.settle(controller)
    cluster.add_node("node-2")
    cluster.settle(controller)
    assert sorted(pods_by_node(cluster)) == ["node-1", "node-2"]
    cluster.registry.delete("nodes", None, "node-2")
    cluster.settle(controller)
    assert sorted(pods_by_node(cluster)) == ["node-1"]
    assert status(cluster)["desiredNumberScheduled"] == 1


def test_failed_pods_are_replaced_with_a_per_node_back_off(cluster, controller):
    cluster.add_node("node-1")
    daemon_set(cluster)
    cluster.settle(controller)
    schedule(cluster)
    first = cluster.list("pods")[0].metadata.name
    cluster.set_pod_status(first, phase="Failed", ready=False)
    cluster.settle(controller)
    finish_deletions(cluster)
    cluster.settle(controller)
    schedule(cluster)
    second = [pod.metadata.name for pod in cluster.list("pods")]
    assert len(second) == 1 and second[0] != first
    events = [event["message"] for event in cluster.registry.list("events", "default")["items"]]
    assert f"Found failed daemon pod default/{first} on node node-1, will try to kill it" in events
    cluster.set_pod_status(second[0], phase="Failed", ready=False)
    cluster.settle(controller)
    assert [pod.metadata.name for pod in cluster.list("pods")] == second  # within the 1 s back-off
    cluster.clock.advance(1.5)
    cluster.settle(controller)
    assert cluster.get("pods", second[0]) is None  # a Failed pod is deleted at once


def test_an_extra_pod_on_a_node_is_deleted_keeping_the_oldest_and_orphans_are_adopted(cluster, controller):
    cluster.add_node("node-1")
    made = daemon_set(cluster)
    cluster.settle(controller)
    schedule(cluster)
    kept = cluster.list("pods")[0].metadata.name
    cluster.clock.advance(5)
    extra = cluster.pod("extra", labels={"app": "agent"}, node_name="node-1")
    cluster.settle(controller)
    assert cluster.get("pods", kept).metadata.deletion_timestamp is None
    adopted = cluster.get("pods", extra.metadata.name)
    assert adopted.metadata.owner_references[0].uid == made.metadata.uid
    assert adopted.metadata.deletion_timestamp is not None


def test_rolling_update_replaces_one_node_at_a_time_with_max_unavailable_1(cluster, controller):
    for name in ("node-1", "node-2", "node-3"):
        cluster.add_node(name)
    daemon_set(cluster, image="busybox:1")
    cluster.settle(controller)
    make_ready(cluster)
    cluster.settle(controller)
    set_image(cluster, "agent", "busybox:2")
    cluster.settle(controller)
    deleting = [pod for pod in cluster.list("pods") if pod.metadata.deletion_timestamp is not None]
    assert len(deleting) == 1
    assert cluster.get("daemonsets", "agent").metadata.annotations["deprecated.daemonset.template.generation"] == "2"
    seen_max_unavailable = 0
    for _ in range(10):
        finish_deletions(cluster)
        cluster.settle(controller)
        not_serving = sum(1 for pod in cluster.list("pods") if pod.status.phase != "Running"
                          or pod.metadata.deletion_timestamp is not None)
        seen_max_unavailable = max(seen_max_unavailable, not_serving)
        make_ready(cluster)
        cluster.settle(controller)
    assert set(images_by_node(cluster).values()) == {"busybox:2"} and len(images_by_node(cluster)) == 3
    assert seen_max_unavailable == 1
    final = status(cluster)
    assert (final["updatedNumberScheduled"], final["numberAvailable"], final["observedGeneration"]) == (3, 3, 2)


def test_rolling_update_with_max_surge_starts_the_new_pod_before_the_old_one_goes(cluster, controller):
    for name in ("node-1", "node-2"):
        cluster.add_node(name)
    daemon_set(cluster, image="busybox:1",
               strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    cluster.settle(controller)
    make_ready(cluster)
    cluster.settle(controller)
    set_image(cluster, "agent", "busybox:2")
    cluster.settle(controller)
    by_node = pods_by_node(cluster)
    assert sorted(len(names) for names in by_node.values()) == [1, 2]  # one node surges
    assert not [pod for pod in cluster.list("pods") if pod.metadata.deletion_timestamp is not None]
    for _ in range(8):
        make_ready(cluster)
        cluster.settle(controller)
        # Every node always has a ready pod that is not being deleted.
        ready_nodes = {target_node_name(pod) for pod in cluster.list("pods")
                       if pod.metadata.deletion_timestamp is None and pod.status.phase == "Running"}
        assert ready_nodes == {"node-1", "node-2"}
        finish_deletions(cluster)
        cluster.settle(controller)
    assert images_by_node(cluster) == {"node-1": "busybox:2", "node-2": "busybox:2"}
    assert {node: len(names) for node, names in pods_by_node(cluster).items()} == {"node-1": 1, "node-2": 1}


def test_on_delete_keeps_old_pods_until_one_is_deleted(cluster, controller):
    cluster.add_node("node-1")
    cluster.add_node("node-2")
    daemon_set(cluster, image="busybox:1", strategy={"type": "OnDelete"})
    cluster.settle(controller)
    make_ready(cluster)
    set_image(cluster, "agent", "busybox:2")
    cluster.settle(controller)
    assert set(images_by_node(cluster).values()) == {"busybox:1"}
    assert status(cluster).get("updatedNumberScheduled") is None  # 0, omitted as Kubernetes does
    victim = [pod for pod in cluster.list("pods") if target_node_name(pod) == "node-1"][0]
    cluster.registry.delete("pods", "default", victim.metadata.name, grace_period_seconds=0)
    cluster.settle(controller)
    assert images_by_node(cluster) == {"node-1": "busybox:2", "node-2": "busybox:1"}
    assert status(cluster)["updatedNumberScheduled"] == 1


def test_history_records_revisions_a_rollback_reuses_and_renumbers_one_and_old_ones_are_pruned(cluster, controller):
    cluster.add_node("node-1")
    daemon_set(cluster, image="busybox:1", history_limit=1)
    cluster.settle(controller)

    def revisions():
        return sorted((item.revision, item.metadata.labels["controller-revision-hash"], item.metadata.name)
                      for item in cluster.list("controllerrevisions"))

    first = revisions()
    assert len(first) == 1 and first[0][0] == 1 and first[0][2] == f"agent-{first[0][1]}"
    pod_hash = cluster.list("pods")[0].metadata.labels["controller-revision-hash"]
    assert pod_hash == first[0][1]
    set_image(cluster, "agent", "busybox:2")
    for _ in range(4):
        cluster.settle(controller)
        finish_deletions(cluster)
        make_ready(cluster)
    assert [revision for revision, _, _ in revisions()] == [1, 2]
    set_image(cluster, "agent", "busybox:1")  # back to the first template: its revision returns as 3
    for _ in range(4):
        cluster.settle(controller)
        finish_deletions(cluster)
        make_ready(cluster)
    numbers = revisions()
    assert [revision for revision, _, _ in numbers] == [2, 3]
    assert numbers[1][2] == first[0][2]
    set_image(cluster, "agent", "busybox:3")
    for _ in range(4):
        cluster.settle(controller)
        finish_deletions(cluster)
        make_ready(cluster)
    # Limit 1: the newest old revision stays besides the current one; revision 2 is pruned.
    assert [revision for revision, _, _ in revisions()] == [3, 4]


def test_min_ready_seconds_delays_available_and_the_sync_asks_to_look_again(cluster, controller):
    cluster.add_node("node-1")
    daemon_set(cluster, min_ready_seconds=10)
    cluster.settle(controller)
    make_ready(cluster)
    cluster.refresh()
    assert controller.sync("default/agent") == 10.0
    assert status(cluster).get("numberAvailable") is None and status(cluster)["numberReady"] == 1
    cluster.clock.advance(11)
    cluster.settle(controller)
    controller.sync("default/agent")
    assert status(cluster)["numberAvailable"] == 1


def test_get_ds_columns_as_kubectl_prints_them(cluster, controller):
    cluster.add_node("node-1", labels={"disk": "ssd"})
    made = daemon_set(cluster, node_selector={"disk": "ssd"})
    cluster.settle(controller)
    printer = PRINTERS["daemonsets"]
    assert [column.name for column in printer.columns] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age", "Containers",
        "Images", "Selector"]
    row = printer.row(cluster.registry.get("daemonsets", "default", "agent"), cluster.clock.now() + 5)
    assert row[:7] == ["agent", 1, 1, 0, 1, 0, "disk=ssd"]
    assert row[8:] == ["main", "busybox", "app=agent"]
    assert made.kind == "DaemonSet"


def test_template_generation_counts_template_changes_only_and_the_selector_is_immutable(cluster):
    daemon_set(cluster)
    stored = cluster.registry.get("daemonsets", "default", "agent")
    assert stored["metadata"]["annotations"] == {"deprecated.daemonset.template.generation": "1"}
    stored["spec"]["minReadySeconds"] = 5
    stored["metadata"]["annotations"] = {}
    updated = cluster.registry.replace("daemonsets", "default", "agent", stored)
    assert updated["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    assert updated["metadata"]["generation"] == 2
    set_image(cluster, "agent", "busybox:2")
    assert cluster.registry.get("daemonsets", "default", "agent")["metadata"]["annotations"][
        "deprecated.daemonset.template.generation"] == "2"
    changed = cluster.registry.get("daemonsets", "default", "agent")
    changed["spec"]["selector"] = {"matchLabels": {"app": "agent", "tier": "x"}}
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    with pytest.raises(api.errors.Invalid) as raised:
        cluster.registry.replace("daemonsets", "default", "agent", changed)
    assert "spec.selector: Invalid value" in str(raised.value) and "field is immutable" in str(raised.value)


def body(**spec_changes):
    spec = {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    spec.update(spec_changes)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "a"}, "spec": spec}


@pytest.mark.parametrize("changes, message", [
    ({"updateStrategy": {"type": "Sometimes"}},
     'spec.updateStrategy: Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Sometimes", '
     'RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: "RollingUpdate", "OnDelete"'),
    ({"updateStrategy": {"rollingUpdate": {"maxSurge": 1}}},
     "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"),
    ({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"),
    ({"updateStrategy": {"rollingUpdate": {"maxUnavailable": "150%"}}},
     'spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%'),
    ({"updateStrategy": {"rollingUpdate": {"maxUnavailable": "x"}}},
     'spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: "x": a valid percent string'),
    ({"selector": {}}, "spec.selector: Invalid value: {}: empty selector is invalid for daemonset"),
    ({"selector": {"matchLabels": {"app": "b"}}},
     'spec.template.metadata.labels: Invalid value: {"app":"a"}: `selector` does not match template `labels`'),
    ({"minReadySeconds": -1}, "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"),
    ({"revisionHistoryLimit": -1}, "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"),
])
def test_validation_answers_with_kubernetes_messages(changes, message):
    with pytest.raises(api.errors.Invalid) as raised:
        api.parse_object(body(**changes))
    assert message in str(raised.value)


def test_template_restart_policy_and_active_deadline_are_refused():
    spec = body()
    spec["spec"]["template"]["spec"].update(restartPolicy="Never", activeDeadlineSeconds=5)
    with pytest.raises(api.errors.Invalid) as raised:
        api.parse_object(spec)
    text = str(raised.value)
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"' in text
    assert "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported" in text


def test_defaults_are_rolling_update_with_max_unavailable_1_and_max_surge_0():
    made = api.parse_object(body())
    assert made.to_dict()["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                                        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert made.spec.revision_history_limit == 10
    on_delete = api.parse_object(body(updateStrategy={"type": "OnDelete"}))
    assert on_delete.to_dict()["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_deleting_the_daemon_set_collects_its_pods_and_revisions(cluster, controller):
    from controllers.garbagecollector import GarbageCollector

    collector = GarbageCollector(cluster.client, cluster.clock, cluster.informers)
    cluster.add_node("node-1")
    daemon_set(cluster)
    cluster.settle(controller)
    schedule(cluster)
    assert len(cluster.list("pods")) == 1 and len(cluster.list("controllerrevisions")) == 1
    cluster.registry.delete("daemonsets", "default", "agent")
    for _ in range(5):
        cluster.settle(collector)
        cluster.settle(controller)
        finish_deletions(cluster)
    assert cluster.list("pods") == [] and cluster.list("controllerrevisions") == []


def test_orphan_revisions_are_adopted_and_revisions_that_stop_matching_are_released(cluster, controller):
    cluster.add_node("node-1")
    made = daemon_set(cluster)
    cluster.settle(controller)
    (revision,) = cluster.list("controllerrevisions")
    cluster.registry.patch("controllerrevisions", "default", revision.metadata.name,
                           {"metadata": {"ownerReferences": None}})  # as `delete --cascade=orphan` leaves it
    cluster.settle(controller)  # the orphan's event brings the DaemonSet that selects it
    (revision,) = cluster.list("controllerrevisions")
    assert [(ref.uid, ref.controller) for ref in revision.metadata.owner_references] == [(made.metadata.uid, True)]
    assert len(cluster.client.calls_of("create", "controllerrevisions")) == 1  # adopted, not made again

    cluster.registry.patch("controllerrevisions", "default", revision.metadata.name,
                           {"metadata": {"labels": {"app": "elsewhere"}}})
    cluster.settle(controller)
    released = cluster.get("controllerrevisions", revision.metadata.name)
    assert released.metadata.owner_references is None
