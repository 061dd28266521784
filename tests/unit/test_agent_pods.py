"""The node agent running pods on a FakeRuntime: start, status, restarts, back-off, probes, termination."""

import os
import signal
import time

import pytest

from minikube_py.api import errors
from minikube_py.runtime.types import ExecResult
from tests.unit.agent_harness import AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def test_a_pod_gets_a_sandbox_its_files_and_its_containers_started_in_order(harness):
    uid = harness.create_pod("web", [{"name": "a"}, {"name": "b"}])
    harness.sync()
    calls = [call[:3] if call[0] == "start_container" else call[:1] for call in harness.runtime.calls
             if call[0] in ("create_sandbox", "start_container")]
    assert calls == [("create_sandbox",), ("start_container", uid, "a"), ("start_container", uid, "b")]
    status = harness.pod("web")["status"]
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.244.0.2" and status["podIPs"] == [{"ip": "10.244.0.2"}]
    assert [s["state"].get("running") is not None for s in status["containerStatuses"]] == [True, True]
    assert status["containerStatuses"][0]["containerID"].startswith("minikube-py://")
    assert status["containerStatuses"][0]["imageID"].startswith("sha256:")
    assert harness.condition("web", "Ready")["status"] == "True"
    directory = os.path.join(harness.home, "pods", uid)
    with open(os.path.join(directory, "etc-hosts")) as file:
        assert "10.244.0.2\tweb\n" in file.read()
    with open(os.path.join(directory, "resolv.conf")) as file:
        assert file.read() == "nameserver 192.0.2.53\nsearch example.test\n"
    reasons = [reason for reason, _ in harness.events()]
    assert reasons.count("Started") == 2 and "Pulled" in reasons
    assert ("Pulled", 'Container image "busybox" already present on machine') in harness.events()


def test_status_is_written_only_when_it_changed(harness):
    harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    version = harness.pod("web")["metadata"]["resourceVersion"]
    harness.advance(30)
    assert harness.pod("web")["metadata"]["resourceVersion"] == version


def test_a_steady_pod_with_probes_gets_no_status_writes_across_probe_periods(harness):
    probe = {"exec": {"command": ["true"]}, "periodSeconds": 1}
    uid = harness.create_pod("probed", [{"name": "main", "readinessProbe": probe, "livenessProbe": probe,
                                         "startupProbe": probe}])
    harness.sync()
    harness.advance(1)
    harness.advance(1)
    assert harness.condition("probed", "Ready")["status"] == "True"
    version = harness.pod("probed")["metadata"]["resourceVersion"]
    probes_before = harness.runtime.call_names().count("exec_sync")
    for _ in range(20):
        harness.advance(1)
    assert harness.runtime.call_names().count("exec_sync") >= probes_before + 40, "the probes kept running"
    assert harness.pod("probed")["metadata"]["resourceVersion"] == version
    assert harness.runtime.container_for(uid, "main").status == "running"


@pytest.mark.parametrize(
    "policy, code, phase, restarted",
    [
        ("Always", 0, "Running", True),
        ("Always", 1, "Running", True),
        ("OnFailure", 0, "Succeeded", False),
        ("OnFailure", 1, "Running", True),
        ("Never", 0, "Succeeded", False),
        ("Never", 1, "Failed", False),
    ],
)
def test_restart_policy_decides_restart_and_phase(harness, policy, code, phase, restarted):
    uid = harness.create_pod("job", [{"name": "main"}], restartPolicy=policy)
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid), code)
    harness.sync()
    harness.advance(10)
    pod = harness.pod("job")
    assert pod["status"]["phase"] == phase
    status = harness.status("job")
    if restarted:
        assert status["restartCount"] == 1 and "running" in status["state"]
        assert status["lastState"]["terminated"]["exitCode"] == code
        assert status["lastState"]["terminated"]["reason"] == ("Completed" if code == 0 else "Error")
    else:
        assert status["restartCount"] == 0
        assert status["state"]["terminated"]["exitCode"] == code
        assert harness.runtime.sandboxes == {}, "a finished pod's sandbox is removed"
        assert harness.ipam.allocations() == {}


def test_a_crashing_container_waits_in_crash_loop_back_off_with_kubelets_message(harness):
    uid = harness.create_pod("crasher", [{"name": "main"}])
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid), 3)
    harness.sync()
    status = harness.status("crasher")
    assert status["restartCount"] == 1 and "running" in status["state"], "the first restart is immediate"
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert not [reason for reason, _ in harness.events() if reason == "BackOff"]

    harness.runtime.exit_container(harness.container_id(uid), 3)
    harness.sync()
    waiting = harness.status("crasher")["state"]["waiting"]
    assert waiting == {"reason": "CrashLoopBackOff",
                       "message": f"back-off 10s restarting failed container=main pod=crasher_default({uid})"}
    assert harness.pod("crasher")["status"]["phase"] == "Running"
    assert harness.status("crasher")["lastState"]["terminated"]["exitCode"] == 3
    assert ("BackOff", f"Back-off restarting failed container main in pod crasher_default({uid})") in harness.events()

    harness.advance(9)
    assert harness.status("crasher")["restartCount"] == 1
    harness.advance(1)
    assert harness.status("crasher")["restartCount"] == 2

    harness.runtime.exit_container(harness.container_id(uid), 3)
    harness.advance(1)
    assert "back-off 20s restarting" in harness.status("crasher")["state"]["waiting"]["message"]
    harness.advance(19)
    assert harness.status("crasher")["restartCount"] == 3


def test_an_oom_killed_container_is_reported_with_reason_and_a_warning(harness):
    uid = harness.create_pod("hog", [{"name": "main"}], restartPolicy="Never")
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid), 137, oom_killed=True, signal_number=9)
    harness.sync()
    terminated = harness.status("hog")["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137
    assert harness.pod("hog")["status"]["phase"] == "Failed"
    assert any(reason == "OOMKilled" and "main" in message for reason, message in harness.events())


def test_a_missing_image_waits_with_err_image_never_pull_naming_the_image(harness):
    harness.create_pod("lost", [{"name": "main", "image": "registry.example/nothing:1.0", "imagePullPolicy": "Never"}])
    harness.sync()
    waiting = harness.status("lost")["state"]["waiting"]
    assert waiting["reason"] == "ErrImageNeverPull" and "registry.example/nothing:1.0" in waiting["message"]
    assert harness.pod("lost")["status"]["phase"] == "Pending"


def test_a_command_that_cannot_start_is_a_start_error_then_run_container_error(harness):
    harness.runtime.fail_next_start("main", "RunContainerError", 'exec: "nope": executable file not found in $PATH')
    uid = harness.create_pod("broken", [{"name": "main", "command": ["nope"]}])
    harness.sync()
    status = harness.status("broken")
    assert "running" in status["state"], "restarted at once after its first failed start"
    assert status["lastState"]["terminated"]["reason"] == "StartError"
    assert status["lastState"]["terminated"]["exitCode"] == 128
    harness.runtime.fail_next_start("main", "RunContainerError", 'exec: "nope": executable file not found in $PATH')
    harness.runtime.exit_container(harness.container_id(uid), 1)
    harness.advance(10)  # the second crash waits 10 s, then the start fails again
    status = harness.status("broken")
    assert status["state"]["waiting"]["reason"] == "RunContainerError"
    assert status["lastState"]["terminated"]["reason"] == "StartError"
    harness.advance(20)
    assert "running" in harness.status("broken")["state"]


def test_readiness_probe_flips_ready_and_the_conditions_transition_time(harness):
    uid = harness.create_pod("toggled", [{"name": "main", "readinessProbe": {
        "exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 2, "initialDelaySeconds": 5}}])
    harness.sync()
    assert harness.condition("toggled", "Ready")["status"] == "False", "not ready before the first probe"
    assert harness.pod("toggled")["status"]["phase"] == "Running"
    outcome = {"result": ExecResult(0, b"", b"")}
    harness.runtime.script_exec(harness.container_id(uid), lambda argv: outcome["result"])
    harness.advance(5)
    ready = harness.condition("toggled", "Ready")
    assert ready["status"] == "True" and harness.status("toggled")["ready"] is True
    became_ready_at = ready["lastTransitionTime"]

    outcome["result"] = ExecResult(1, b"", b"")
    harness.advance(5)
    harness.advance(1)
    not_ready = harness.condition("toggled", "Ready")
    assert not_ready["status"] == "False" and not_ready["reason"] == "ContainersNotReady"
    assert not_ready["lastTransitionTime"] != became_ready_at
    assert harness.status("toggled")["restartCount"] == 0
    assert harness.condition("toggled", "PodScheduled")["status"] == "True"


def test_a_failing_liveness_probe_kills_the_container_and_it_is_restarted(harness):
    uid = harness.create_pod("hung", [{"name": "main", "livenessProbe": {
        "exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 2}}], terminationGracePeriodSeconds=1)
    harness.sync()
    first = harness.container_id(uid)
    harness.runtime.script_exec(first, ExecResult(1, b"no answer", b""))  # the probe at start passed
    harness.advance(1)
    assert harness.runtime.containers[first].status == "running", "one failure is below the threshold"
    harness.advance(1)
    assert harness.runtime.containers[first].status == "exited"
    assert ("Unhealthy", "Liveness probe failed: no answer") in harness.events()
    assert ("Killing", "Container main failed liveness probe, will be restarted") in harness.events()
    harness.advance(10)
    assert harness.status("hung")["restartCount"] == 1
    assert harness.container_id(uid) != first


def test_deleting_a_pod_stops_containers_with_its_grace_then_frees_everything_and_deletes_it(harness):
    uid = harness.create_pod("web", [{"name": "a"}, {"name": "b"}], terminationGracePeriodSeconds=20)
    harness.sync()
    a, b = harness.container_id(uid, "a"), harness.container_id(uid, "b")
    harness.runtime.ignore_sigterm(b)
    harness.registry.delete("pods", "default", "web")
    harness.sync()
    kills = [call[1:] for call in harness.runtime.calls if call[0] == "kill_container"]
    assert sorted(kills) == sorted([(a, signal.SIGTERM), (b, signal.SIGTERM)])
    harness.advance(19)
    assert harness.runtime.containers[b].status == "running", "b has 20 seconds to stop"
    assert "remove_sandbox" not in harness.runtime.call_names()
    harness.advance(1)
    names = harness.runtime.call_names()
    assert (b, signal.SIGKILL) in [call[1:] for call in harness.runtime.calls if call[0] == "kill_container"]
    assert names.index("remove_sandbox") > max(i for i, name in enumerate(names) if name == "kill_container")
    assert ("Killing", "Stopping container a") in harness.events()
    assert harness.ipam.allocations() == {}
    assert not os.path.exists(os.path.join(harness.home, "pods", uid))
    with pytest.raises(errors.NotFound):
        harness.pod("web")


def test_a_container_ignoring_sigterm_is_killed_when_the_grace_runs_out(harness):
    uid = harness.create_pod("stubborn", [{"name": "main"}], terminationGracePeriodSeconds=3)
    harness.sync()
    container_id = harness.container_id(uid)
    harness.runtime.ignore_sigterm(container_id)
    began = harness.clock.now()
    harness.registry.delete("pods", "default", "stubborn")
    harness.sync()
    assert harness.runtime.containers[container_id].status == "running"
    harness.advance(3)
    assert harness.clock.now() - began >= 3
    assert harness.runtime.containers.get(container_id) is None or harness.runtime.containers[container_id].status == "exited"
    assert harness.runtime.removed_containers.count(container_id) == 1


def test_a_force_deleted_pod_is_cleaned_up_without_another_delete(harness):
    uid = harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    harness.registry.delete("pods", "default", "web", grace_period_seconds=0)
    harness.sync()
    assert uid not in harness.runtime.sandboxes
    assert harness.ipam.allocations() == {}


def test_the_agents_threads_run_a_pod_and_stop_it_on_delete(tmp_path):
    from minikube_py.clock import Clock

    harness = AgentHarness(tmp_path, clock=Clock())

    def wait_until(check, what: str, seconds: float = 10.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    harness.agent.start()
    try:
        uid = harness.create_pod("web", [{"name": "main"}], terminationGracePeriodSeconds=5)
        wait_until(lambda: harness.pod("web").get("status", {}).get("phase") == "Running", "phase Running")
        harness.runtime.exit_container(harness.container_id(uid), 1)
        wait_until(lambda: harness.status("web")["restartCount"] == 1, "an immediate restart")
        wait_until(lambda: "running" in harness.status("web")["state"], "the restarted container running")
        harness.runtime.exit_container(harness.container_id(uid), 1)
        wait_until(lambda: harness.status("web")["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff",
                   "CrashLoopBackOff after the exit")
        harness.registry.delete("pods", "default", "web")
        wait_until(lambda: not harness.registry.list("pods", "default")["items"], "the pod to be deleted")
        assert harness.ipam.allocations() == {}
    finally:
        harness.agent.stop()


def test_stop_leaves_no_agent_thread_behind(tmp_path):
    """The runtime's shutdown follows at once: no exit watcher may still hold its event subscription."""
    import threading

    from minikube_py.clock import Clock

    harness = AgentHarness(tmp_path, clock=Clock())
    harness.agent.start()
    harness.agent.stop()
    alive = [thread.name for thread in threading.enumerate() if thread.name.startswith(("agent-", "probe-timers"))]
    assert alive == []


def test_container_events_name_their_container_in_involved_object_field_path(harness):
    harness.create_pod("web", [{"name": "main"}])
    harness.create_pod("setup", [{"name": "main"}],
                       initContainers=[{"name": "prepare", "image": "busybox", "command": ["true"]}])
    harness.sync()
    paths = {(event["involvedObject"]["name"], event["reason"], event["involvedObject"].get("fieldPath"))
             for event in harness.registry.list("events", "default")["items"]}
    assert {("web", "Pulled", "spec.containers{main}"), ("web", "Created", "spec.containers{main}"),
            ("web", "Started", "spec.containers{main}"), ("setup", "Started", "spec.initContainers{prepare}")} <= paths
