"""PodDisruptionBudgets: the disruption controller's status arithmetic, and the eviction
subresource that consults it (429 when a budget forbids)."""

from __future__ import annotations

import pytest

from controllers.disruption import DisruptionController
from minikube_py.api import errors


@pytest.fixture
def controller(cluster):
    return DisruptionController(cluster.client, cluster.clock, cluster.informers)


def budget(cluster, name="db", **spec):
    return cluster.create("poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "db"}}, **spec}})


def db_pods(cluster, count, ready=True, owner=None):
    for index in range(count):
        cluster.pod(f"db-{index}", labels={"app": "db"}, node_name="n1", owner=owner)
        cluster.set_pod_status(f"db-{index}", ready=ready)


def status(cluster, name="db"):
    return cluster.get("poddisruptionbudgets", name).status


def test_min_available_as_a_number_counts_the_selected_pods(cluster, controller):
    cluster.add_node("n1")
    db_pods(cluster, 3)
    budget(cluster, minAvailable=2)
    cluster.settle(controller)
    current = status(cluster)
    assert (current.expected_pods, current.desired_healthy, current.current_healthy, current.disruptions_allowed) == (
        3, 2, 3, 1)
    condition = current.condition("DisruptionAllowed")
    assert (condition.status, condition.reason) == ("True", "SufficientPods")
    assert current.observed_generation == 1


def test_max_unavailable_as_a_percent_uses_the_controllers_replicas(cluster, controller):
    cluster.add_node("n1")
    replica_set = cluster.replica_set("db", 5, labels={"app": "db"})
    db_pods(cluster, 4, owner=replica_set)  # one of the five is still missing
    budget(cluster, maxUnavailable="30%")
    cluster.settle(controller)
    current = status(cluster)
    # 5 expected, ceil(1.5) = 2 may be unavailable: 3 desired, 4 healthy, 1 more disruption allowed.
    assert (current.expected_pods, current.desired_healthy, current.current_healthy, current.disruptions_allowed) == (
        5, 3, 4, 1)


def test_a_budget_that_needs_a_controller_fails_safe_without_one(cluster, controller):
    cluster.add_node("n1")
    db_pods(cluster, 2)
    budget(cluster, maxUnavailable=1)
    cluster.settle(controller)
    current = status(cluster)
    condition = current.condition("DisruptionAllowed")
    assert (current.disruptions_allowed, condition.status, condition.reason) == (0, "False", "SyncFailed")
    assert condition.message == 'found no controllers for pod "db-0"'


def test_unready_pods_are_not_healthy(cluster, controller):
    cluster.add_node("n1")
    db_pods(cluster, 2, ready=False)
    budget(cluster, minAvailable=1)
    cluster.settle(controller)
    condition = status(cluster).condition("DisruptionAllowed")
    assert (status(cluster).current_healthy, condition.reason) == (0, "InsufficientPods")


def test_an_eviction_spends_the_allowance_then_is_refused_with_429(cluster, controller):
    cluster.add_node("n1")
    db_pods(cluster, 2)
    budget(cluster, minAvailable=1)
    cluster.settle(controller)

    answer = cluster.registry.evict("default", "db-0", {"apiVersion": "policy/v1", "kind": "Eviction",
                                                         "metadata": {"name": "db-0"}})
    assert (answer["status"], answer["code"]) == ("Success", 201)
    assert cluster.get("pods", "db-0").metadata.deletion_timestamp is not None
    after = status(cluster)
    assert after.disruptions_allowed == 0 and "db-0" in after.disrupted_pods

    with pytest.raises(errors.TooManyRequests) as refused:
        cluster.registry.evict("default", "db-1", {"kind": "Eviction"})
    assert refused.value.code == 429
    assert refused.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert refused.value.details["causes"] == [{"reason": "DisruptionBudget",
                                                "message": "The disruption budget db needs 1 healthy pods and has 2 currently"}]
    assert cluster.get("pods", "db-1").metadata.deletion_timestamp is None

    cluster.settle(controller)
    assert status(cluster).current_healthy == 1, "the evicted pod no longer counts as healthy"


def test_pods_without_a_budget_and_unhealthy_pods_under_a_met_budget_are_evicted(cluster, controller):
    cluster.add_node("n1")
    cluster.pod("loose", node_name="n1")
    assert cluster.registry.evict("default", "loose", None)["status"] == "Success"
    db_pods(cluster, 2)
    cluster.pod("db-sick", labels={"app": "db"}, node_name="n1")
    cluster.set_pod_status("db-sick", ready=False)
    budget(cluster, minAvailable=2)
    cluster.settle(controller)
    assert status(cluster).disruptions_allowed == 0
    cluster.registry.evict("default", "db-sick", {"kind": "Eviction"})
    assert cluster.get("pods", "db-sick").metadata.deletion_timestamp is not None


def test_a_budget_not_yet_processed_refuses(cluster, controller):
    cluster.add_node("n1")
    db_pods(cluster, 2)
    budget(cluster, minAvailable=0)
    with pytest.raises(errors.TooManyRequests) as refused:
        cluster.registry.evict("default", "db-0", {"kind": "Eviction"})
    assert refused.value.details["causes"][0]["message"] == (
        "The disruption budget db is still being processed by the server.")
