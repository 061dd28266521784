"""Init containers in the node agent: one at a time, in order, each to completion, before any app
container; restarted per restartPolicy; reported in initContainerStatuses and the Initialized
condition (semantics.md 3.1-3.4)."""

import pytest

from minikube_py.cli.tables import pod_summary
from tests.unit.agent_harness import AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def create_initializing_pod(harness: AgentHarness, **spec) -> str:
    return harness.create_pod("web", [{"name": "main"}], initContainers=[
        {"name": "init-a", "image": "busybox", "command": ["true"]},
        {"name": "init-b", "image": "busybox", "command": ["true"]},
    ], **spec)


def complete_init_containers(harness: AgentHarness, uid: str) -> None:
    for name in ("init-a", "init-b"):
        harness.runtime.exit_container(harness.container_id(uid, name), 0)
        harness.sync()


def started_names(harness: AgentHarness, uid: str) -> list[str]:
    return [call[2] for call in harness.runtime.calls if call[0] == "start_container" and call[1] == uid]


def init_status(harness: AgentHarness, index: int) -> dict:
    return harness.pod("web")["status"]["initContainerStatuses"][index]


def initialized(harness: AgentHarness) -> tuple:
    condition = harness.condition("web", "Initialized")
    return condition["status"], condition.get("reason"), condition.get("message")


def test_init_containers_run_one_at_a_time_in_order_before_the_app_containers(harness):
    uid = create_initializing_pod(harness)
    harness.sync()
    assert started_names(harness, uid) == ["init-a"]
    status = harness.pod("web")["status"]
    assert status["phase"] == "Pending"
    assert "running" in status["initContainerStatuses"][0]["state"]
    assert status["initContainerStatuses"][0]["started"] is True
    assert status["initContainerStatuses"][0]["ready"] is False
    assert status["initContainerStatuses"][1]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert initialized(harness) == ("False", "ContainersNotInitialized",
                                    "containers with incomplete status: [init-a init-b]")

    harness.runtime.exit_container(harness.container_id(uid, "init-a"), 0)
    harness.sync()
    assert started_names(harness, uid) == ["init-a", "init-b"]
    first = init_status(harness, 0)
    assert first["state"]["terminated"]["reason"] == "Completed"
    assert first["ready"] is True and first["restartCount"] == 0
    assert initialized(harness) == ("False", "ContainersNotInitialized", "containers with incomplete status: [init-b]")
    assert harness.pod("web")["status"]["phase"] == "Pending"

    harness.runtime.exit_container(harness.container_id(uid, "init-b"), 0)
    harness.sync()
    assert started_names(harness, uid) == ["init-a", "init-b", "main"]
    status = harness.pod("web")["status"]
    assert status["phase"] == "Running"
    assert "running" in status["containerStatuses"][0]["state"]
    assert [s["ready"] for s in status["initContainerStatuses"]] == [True, True]
    assert initialized(harness) == ("True", None, None)
    assert harness.condition("web", "Ready")["status"] == "True"
    started = [message for reason, message in harness.events() if reason == "Started"]
    assert started == ["Started container init-a", "Started container init-b", "Started container main"]
    assert [message for reason, message in harness.events() if reason == "Created"] == [
        "Created container init-a", "Created container init-b", "Created container main"]


def test_a_failing_init_container_is_retried_with_back_off_and_app_containers_wait(harness):
    uid = create_initializing_pod(harness, restartPolicy="OnFailure")
    harness.sync()
    # As kubelet: the first restart is immediate, then 10 s, then 20 s.
    harness.runtime.exit_container(harness.container_id(uid, "init-a"), 1)
    harness.sync()
    assert started_names(harness, uid) == ["init-a", "init-a"]
    harness.runtime.exit_container(harness.container_id(uid, "init-a"), 1)
    harness.sync()
    status = init_status(harness, 0)
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=init-a pod=web_default(")
    assert status["lastState"]["terminated"]["reason"] == "Error"
    assert status["ready"] is False
    pod_status = harness.pod("web")["status"]
    assert pod_status["phase"] == "Pending"
    assert pod_status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert initialized(harness)[0] == "False"
    assert ("BackOff", f"Back-off restarting failed container init-a in pod web_default({uid})") in harness.events()

    harness.advance(9)
    assert started_names(harness, uid) == ["init-a", "init-a"]
    harness.advance(1)
    assert started_names(harness, uid) == ["init-a", "init-a", "init-a"]
    assert init_status(harness, 0)["restartCount"] == 2
    harness.runtime.exit_container(harness.container_id(uid, "init-a"), 1)
    harness.advance(19)
    assert started_names(harness, uid) == ["init-a", "init-a", "init-a"]
    assert init_status(harness, 0)["state"]["waiting"]["message"].startswith("back-off 20s")
    harness.advance(1)
    assert started_names(harness, uid) == ["init-a", "init-a", "init-a", "init-a"]
    assert init_status(harness, 0)["restartCount"] == 3

    harness.runtime.exit_container(harness.container_id(uid, "init-a"), 0)
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid, "init-b"), 0)
    harness.sync()
    assert started_names(harness, uid)[-2:] == ["init-b", "main"]
    assert harness.pod("web")["status"]["phase"] == "Running"
    assert initialized(harness)[0] == "True"


def test_an_init_container_that_completes_is_not_restarted_under_restart_policy_always(harness):
    uid = create_initializing_pod(harness)
    harness.sync()
    complete_init_containers(harness, uid)
    harness.advance(600)
    assert started_names(harness, uid) == ["init-a", "init-b", "main"]
    assert [s["restartCount"] for s in harness.pod("web")["status"]["initContainerStatuses"]] == [0, 0]


def test_a_failed_init_container_under_restart_policy_never_fails_the_pod(harness):
    uid = create_initializing_pod(harness, restartPolicy="Never")
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid, "init-a"), 3)
    harness.sync()
    harness.advance(300)
    status = harness.pod("web")["status"]
    assert status["phase"] == "Failed"
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert status["initContainerStatuses"][0]["restartCount"] == 0
    assert status["initContainerStatuses"][1]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert started_names(harness, uid) == ["init-a"]
    assert initialized(harness) == ("False", "ContainersNotInitialized",
                                    "containers with incomplete status: [init-a init-b]")
    assert harness.runtime.sandboxes == {} and harness.ipam.allocations() == {}


def test_init_containers_run_again_when_the_sandbox_is_recreated(harness):
    uid = create_initializing_pod(harness)
    harness.sync()
    complete_init_containers(harness, uid)
    harness.runtime.kill_sandbox(uid)
    harness.sync()
    assert started_names(harness, uid) == ["init-a", "init-b", "main", "init-a"]
    first = init_status(harness, 0)
    assert "running" in first["state"] and first["restartCount"] == 1
    assert first["lastState"]["terminated"]["reason"] == "Completed"
    # Its app container ran before, so kubelet keeps the pod Initialized and Running meanwhile.
    assert harness.status("web")["state"]["terminated"]["exitCode"] == 137

    harness.runtime.exit_container(harness.container_id(uid, "init-a"), 0)
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid, "init-b"), 0)
    harness.sync()
    assert started_names(harness, uid)[-3:] == ["init-a", "init-b", "main"]
    status = harness.status("web")
    assert "running" in status["state"] and status["restartCount"] == 1
    assert [s["restartCount"] for s in harness.pod("web")["status"]["initContainerStatuses"]] == [1, 1]


def test_a_restarted_agent_does_not_rerun_init_containers_that_completed(harness):
    uid = create_initializing_pod(harness)
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid, "init-a"), 0)
    harness.sync()
    running_init_pid = harness.runtime.container_for(uid, "init-b").pid

    again = harness.restarted()
    assert started_names(again, uid) == ["init-a", "init-b"]
    assert again.runtime.container_for(uid, "init-b").pid == running_init_pid
    assert init_status(again, 0)["state"]["terminated"]["reason"] == "Completed"
    assert initialized(again) == ("False", "ContainersNotInitialized", "containers with incomplete status: [init-b]")

    again.runtime.exit_container(again.container_id(uid, "init-b"), 0)
    again.sync()
    assert started_names(again, uid) == ["init-a", "init-b", "main"]
    assert again.pod("web")["status"]["phase"] == "Running"


def test_pods_stopped_with_the_cluster_run_their_init_containers_again(harness):
    uid = create_initializing_pod(harness)
    harness.sync()
    complete_init_containers(harness, uid)
    harness.stop_node()

    again = harness.restarted()
    assert started_names(again, uid)[-1] == "init-a"
    first = init_status(again, 0)
    assert "running" in first["state"] and first["restartCount"] == 1
    assert first["lastState"]["terminated"]["reason"] == "Completed"


def test_the_status_the_agent_writes_gives_kubectls_init_status_column(harness):
    uid = create_initializing_pod(harness, restartPolicy="OnFailure")
    harness.sync()

    def column() -> str:
        return pod_summary(harness.pod("web"), harness.clock.now()).status

    assert column() == "Init:0/2"
    harness.runtime.exit_container(harness.container_id(uid, "init-a"), 0)
    harness.sync()
    assert column() == "Init:1/2"
    harness.runtime.exit_container(harness.container_id(uid, "init-b"), 1)
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid, "init-b"), 1)  # the second crash waits
    harness.sync()
    assert column() == "Init:CrashLoopBackOff"
    harness.advance(10)
    harness.runtime.exit_container(harness.container_id(uid, "init-b"), 0)
    harness.sync()
    assert column() == "Running"
