"""Sidecar containers (init containers with restartPolicy Always) in the node agent: started in
order, kept running and restarted, never holding the pod back from completing, stopped after the
app containers in reverse order, their readiness counted in the pod's."""

import signal

import pytest

from minikube_py.runtime.types import ExecResult
from tests.unit.agent_harness import AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def sidecar(name: str, **fields) -> dict:
    return {"name": name, "image": "busybox", "command": ["sleep", "3600"], "restartPolicy": "Always", **fields}


def started(harness, uid: str) -> list[str]:
    return [call[2] for call in harness.runtime.calls if call[0] == "start_container" and call[1] == uid]


def init_status(harness, name: str, pod: str = "web") -> dict:
    return next(s for s in harness.pod(pod)["status"]["initContainerStatuses"] if s["name"] == name)


def sigterms(harness) -> list[str]:
    return [call[1] for call in harness.runtime.calls if call[0] == "kill_container" and call[2] == signal.SIGTERM]


def test_the_next_init_container_starts_once_the_sidecar_has_started_and_the_sidecar_keeps_running(harness):
    uid = harness.create_pod("web", [{"name": "main"}], initContainers=[
        sidecar("proxy", startupProbe={"exec": {"command": ["up"]}, "periodSeconds": 1, "initialDelaySeconds": 2}),
        {"name": "setup", "image": "busybox", "command": ["true"]},
    ])
    harness.sync()
    assert started(harness, uid) == ["proxy"]
    status = init_status(harness, "proxy")
    assert "running" in status["state"] and status["started"] is False
    assert harness.pod("web")["status"]["phase"] == "Pending"
    harness.advance(2)  # the startup probe passes
    assert started(harness, uid) == ["proxy", "setup"]
    assert init_status(harness, "proxy")["started"] is True
    harness.runtime.exit_container(harness.container_id(uid, "setup"), 0)
    harness.sync()
    assert started(harness, uid) == ["proxy", "setup", "main"]
    assert "running" in init_status(harness, "proxy")["state"]
    pod = harness.pod("web")
    assert pod["status"]["phase"] == "Running"
    assert harness.condition("web", "Initialized")["status"] == "True"
    assert harness.condition("web", "Ready")["status"] == "True"


def test_a_sidecar_that_exits_is_restarted_while_the_app_runs(harness):
    uid = harness.create_pod("web", [{"name": "main"}], restartPolicy="Never", initContainers=[sidecar("proxy")])
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid, "proxy"), 1)
    harness.sync()
    status = init_status(harness, "proxy")
    assert status["restartCount"] == 1 and "running" in status["state"], "restarted at once, whatever restartPolicy"
    harness.runtime.exit_container(harness.container_id(uid, "proxy"), 1)
    harness.sync()
    assert init_status(harness, "proxy")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert harness.pod("web")["status"]["phase"] == "Running"
    assert harness.runtime.container_for(uid, "main").status == "running"
    harness.advance(10)
    assert init_status(harness, "proxy")["restartCount"] == 2


def test_sidecars_do_not_keep_a_pod_from_completing_and_stop_after_it_in_reverse_order(harness):
    uid = harness.create_pod("job", [{"name": "main"}], restartPolicy="Never", terminationGracePeriodSeconds=30,
                             initContainers=[sidecar("first"), sidecar("second")])
    harness.sync()
    first, second = harness.container_id(uid, "first"), harness.container_id(uid, "second")
    harness.runtime.ignore_sigterm(second)
    harness.runtime.exit_container(harness.container_id(uid, "main"), 0)
    harness.sync()
    assert sigterms(harness) == [second], "the last sidecar goes first; the first waits for it"
    assert harness.pod("job")["status"]["phase"] == "Running", "while its sidecars run"
    harness.runtime.exit_container(second, 0)
    harness.sync()
    assert sigterms(harness) == [second, first]
    pod = harness.pod("job")
    assert pod["status"]["phase"] == "Succeeded"
    assert uid not in harness.runtime.sandboxes
    assert [s["restartCount"] for s in pod["status"]["initContainerStatuses"]] == [0, 0], "not restarted"


def test_a_sidecar_waiting_its_turn_gets_sigterm_when_its_grace_period_ends_and_two_seconds_more(harness):
    uid = harness.create_pod("job", [{"name": "main"}], terminationGracePeriodSeconds=10,
                             initContainers=[sidecar("proxy")])
    harness.sync()
    proxy, main = harness.container_id(uid, "proxy"), harness.container_id(uid, "main")
    for container_id in (proxy, main):
        harness.runtime.ignore_sigterm(container_id)
    harness.registry.delete("pods", "default", "job")
    harness.sync()
    assert sigterms(harness) == [main]
    harness.advance(10)  # main is killed; the sidecar's turn comes at the end of its grace period
    assert sigterms(harness) == [main, proxy]
    harness.advance(1.9)
    assert harness.runtime.containers[proxy].status == "running"
    harness.advance(0.1)
    assert (proxy, signal.SIGKILL) in [call[1:] for call in harness.runtime.calls if call[0] == "kill_container"]


def test_a_deleted_pods_sidecar_is_stopped_after_the_app_containers(harness):
    uid = harness.create_pod("web", [{"name": "main"}], initContainers=[sidecar("proxy")])
    harness.sync()
    proxy, main = harness.container_id(uid, "proxy"), harness.container_id(uid, "main")
    harness.runtime.ignore_sigterm(main)
    harness.registry.delete("pods", "default", "web")
    harness.sync()
    assert sigterms(harness) == [main]
    harness.runtime.exit_container(main, 0)
    harness.sync()
    assert sigterms(harness) == [main, proxy]


def test_a_sidecars_readiness_counts_toward_the_pods(harness):
    uid = harness.create_pod("web", [{"name": "main"}], initContainers=[
        sidecar("proxy", readinessProbe={"exec": {"command": ["ready"]}, "periodSeconds": 1})])
    harness.runtime.script_exec_by_name("proxy", ExecResult(1, b"", b""))
    harness.sync()
    assert harness.runtime.container_for(uid, "main").status == "running", "readiness does not gate the start"
    harness.advance(1)
    ready = harness.condition("web", "Ready")
    assert ready["status"] == "False" and ready["message"] == "containers with unready status: [proxy]"
    harness.runtime.script_exec_by_name("proxy", ExecResult(0, b"", b""))
    harness.advance(1)
    assert harness.condition("web", "Ready")["status"] == "True"
    assert init_status(harness, "proxy")["ready"] is True


def test_a_sidecars_post_start_hook_holds_the_next_init_container(harness):
    uid = harness.create_pod("web", [{"name": "main"}], initContainers=[
        sidecar("proxy", lifecycle={"postStart": {"sleep": {"seconds": 3}}})])
    harness.sync()
    assert started(harness, uid) == ["proxy"]
    harness.advance(3)
    assert started(harness, uid) == ["proxy", "main"]
