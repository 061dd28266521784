"""Kubelet-side admission: pods bound with `nodeName` past the node's room fail as kubelet's do."""

from __future__ import annotations

import pytest

from tests.unit.agent_harness import AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    harness.agent.env_sources.allocatable = {"cpu": "1", "memory": "1Gi", "pods": "2"}
    return harness


def asking(cpu=None, memory=None):
    requests = {key: value for key, value in (("cpu", cpu), ("memory", memory)) if value}
    return [{"name": "main", "resources": {"requests": requests}}] if requests else [{"name": "main"}]


def test_a_pod_past_max_pods_fails_out_of_pods_and_is_never_started(harness):
    harness.create_pod("a", asking())
    harness.create_pod("b", asking())
    uid = harness.create_pod("c", asking())
    harness.sync()
    status = harness.pod("c")["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "OutOfpods")
    assert status["message"] == ("Pod was rejected: Node didn't have enough resource: pods, requested: 1, "
                                 "used: 2, capacity: 2")
    assert ("OutOfpods", "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2") in harness.events()
    assert harness.runtime.container_for(uid, "main") is None
    assert harness.pod("a")["status"]["phase"] == "Running"


@pytest.mark.parametrize(("first", "second", "reason", "message"), [
    (asking(cpu="600m"), asking(cpu="500m"), "OutOfcpu",
     "Node didn't have enough resource: cpu, requested: 500, used: 600, capacity: 1000"),
    (asking(memory="768Mi"), asking(memory="512Mi"), "OutOfmemory",
     "Node didn't have enough resource: memory, requested: 536870912, used: 805306368, capacity: 1073741824"),
])
def test_a_pod_asking_more_than_is_left_fails_out_of_that_resource(harness, first, second, reason, message):
    harness.create_pod("first", first)
    harness.sync()
    harness.create_pod("second", second)
    harness.sync()
    status = harness.pod("second")["status"]
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", reason, f"Pod was rejected: {message}")
    assert harness.pod("first")["status"]["phase"] == "Running"


def test_a_rejected_pod_stays_failed_and_frees_nothing_it_never_held(harness):
    harness.create_pod("big", asking(cpu="2"))
    harness.sync()
    harness.advance(30)
    assert harness.pod("big")["status"]["reason"] == "OutOfcpu"
    assert [reason for reason, _ in harness.events()].count("OutOfcpu") == 1
    harness.create_pod("small", asking(cpu="1"))
    harness.sync()
    assert harness.pod("small")["status"]["phase"] == "Running"


def test_a_deleted_pods_room_is_free_for_the_next_pod(harness):
    harness.create_pod("old", asking(cpu="600m"))
    harness.sync()
    harness.registry.delete("pods", "default", "old")
    harness.advance(31)
    harness.create_pod("new", asking(cpu="600m"))
    harness.sync()
    assert harness.pod("new")["status"]["phase"] == "Running"


def test_admission_adds_up_each_admitted_pods_requests_once(harness, monkeypatch):
    # At 1,000 pods, re-adding every admitted pod's requests for each new pod made admission quadratic.
    from minikube_py.agent import admission, pod as pod_module

    harness.agent.env_sources.allocatable = {"cpu": "100", "memory": "100Gi", "pods": "50"}
    for index in range(10):
        harness.create_pod(f"p{index}", asking(cpu="10m"))
    harness.sync()
    counted = []
    for module in (admission, pod_module):
        original = module.pod_requests
        monkeypatch.setattr(module, "pod_requests", lambda pod, *args, _original=original, **kwargs: (
            counted.append(pod.metadata.name), _original(pod, *args, **kwargs))[1])
    for late in ("late-1", "late-2", "late-3"):
        harness.create_pod(late, asking(cpu="10m"))
        harness.sync()
        assert harness.pod(late)["status"]["phase"] == "Running"
    assert max(counted.count(f"p{index}") for index in range(10)) <= 1, counted
