"""Re-adoption after a daemon restart, the Node object, and the NodeProxy (logs, exec, inspect)."""

import os

import pytest

from minikube_py.api import errors
from minikube_py.runtime.types import SandboxConfig
from tests.unit.agent_harness import NODE, AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def test_a_restarted_agent_adopts_running_pods_and_restarts_what_exited_meanwhile(harness):
    survivor = harness.create_pod("survivor", [{"name": "a"}, {"name": "b"}])
    victim = harness.create_pod("exits-while-down", [{"name": "main"}], restartPolicy="OnFailure")
    harness.sync()
    pids = {name: harness.runtime.container_for(survivor, name).pid for name in ("a", "b")}
    survivor_ip = harness.pod("survivor")["status"]["podIP"]

    # The daemon dies; meanwhile one container is SIGKILLed, and the API loses a pod whose
    # sandbox still runs (deleted with --force), whose IP the pool still holds.
    harness.runtime.exit_container(harness.container_id(victim), 137, signal_number=9)
    orphan = harness.runtime.create_sandbox(SandboxConfig("orphan-uid", "gone", "default", "gone", "10.244.0.99", 24, "10.244.0.1"))
    harness.ipam.allocate("orphan-uid")
    harness.ipam.allocate("another-vanished-pod")

    again = harness.restarted()
    assert {name: again.runtime.container_for(survivor, name).pid for name in ("a", "b")} == pids
    assert again.pod("survivor")["status"]["podIP"] == survivor_ip
    assert [s["restartCount"] for s in again.pod("survivor")["status"]["containerStatuses"]] == [0, 0]
    assert orphan.id not in again.runtime.sandboxes
    assert set(again.ipam.allocations().values()) == {survivor, victim}

    # Its first crash: restarted at once, as kubelet does.
    status = again.status("exits-while-down")
    assert status["restartCount"] == 1 and "running" in status["state"]
    assert status["lastState"]["terminated"]["exitCode"] == 137


def test_a_pod_whose_pause_vanished_gets_a_new_sandbox_and_its_containers_restart(harness):
    uid = harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    first_pause = harness.runtime.sandboxes[uid].pause_pid
    harness.runtime.kill_sandbox(uid)

    again = harness.restarted()
    assert again.runtime.sandboxes[uid].pause_pid != first_pause
    status = again.status("web")
    assert status["restartCount"] == 1 and "running" in status["state"]
    assert again.pod("web")["status"]["podIP"] in again.ipam.allocations()


def test_pods_stopped_with_the_cluster_start_again_with_one_more_restart(harness):
    uid = harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    harness.stop_node()
    assert harness.runtime.sandboxes == {} and harness.ipam.allocations() == {}

    again = harness.restarted()
    status = again.status("web")
    assert status["restartCount"] == 1 and "running" in status["state"]
    assert status["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert uid in again.runtime.sandboxes


def test_a_sandbox_dying_under_a_running_agent_is_replaced_the_same_way(harness):
    uid = harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    harness.runtime.kill_sandbox(uid)
    harness.sync()
    assert harness.status("web")["restartCount"] == 1
    assert "running" in harness.status("web")["state"]


def test_the_node_registers_ready_and_its_heartbeat_keeps_the_transition_time(harness):
    node = harness.registry.get("nodes", None, NODE)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("True", "KubeletReady", "kubelet is posting ready status")
    assert node["status"]["capacity"]["pods"] == "110"
    assert node["status"]["capacity"]["memory"].endswith("Ki")
    assert {a["type"] for a in node["status"]["addresses"]} == {"InternalIP", "Hostname"}
    harness.clock.advance(10)
    harness.agent.update_node_status()
    later = next(c for c in harness.registry.get("nodes", None, NODE)["status"]["conditions"] if c["type"] == "Ready")
    assert later["lastHeartbeatTime"] != ready["lastHeartbeatTime"]
    assert later["lastTransitionTime"] == ready["lastTransitionTime"]


def write_log(home: str, uid: str, container: str, attempt: int, lines: list[str]) -> None:
    directory = os.path.join(home, "pods", uid, "logs", container)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{attempt}.log"), "w") as file:
        file.writelines(lines)


def test_logs_read_the_kubelet_format_with_tail_timestamps_and_previous(harness):
    uid = harness.create_pod("talker", [{"name": "main"}])
    harness.sync()
    write_log(harness.home, uid, "main", 0, ["2026-11-21T22:30:00.000000001Z stdout F first run\n"])
    harness.runtime.exit_container(harness.container_id(uid), 1)
    harness.advance(10)
    write_log(harness.home, uid, "main", 1, [
        "2026-11-21T22:31:00.000000001Z stdout F one\n",
        "2026-11-21T22:31:01.000000001Z stderr P tw\n",
        "2026-11-21T22:31:01.000000002Z stderr F o\n",
        "2026-11-21T22:31:02.000000001Z stdout F three\n",
    ])
    assert b"".join(harness.agent.logs("default", "talker")) == b"one\ntwo\nthree\n"
    assert b"".join(harness.agent.logs("default", "talker", tail_lines=1)) == b"three\n"
    assert b"".join(harness.agent.logs("default", "talker", tail_lines=1, timestamps=True)) == \
        b"2026-11-21T22:31:02.000000001Z three\n"
    assert b"".join(harness.agent.logs("default", "talker", previous=True)) == b"first run\n"


def test_logs_of_a_multi_container_pod_need_a_container_name(harness):
    harness.create_pod("pair", [{"name": "a"}, {"name": "b"}])
    harness.sync()
    with pytest.raises(errors.BadRequest) as raised:
        harness.agent.logs("default", "pair")
    assert raised.value.message == "a container name must be specified for pod pair, choose one of: [a b]"


def test_exec_runs_in_the_named_container_and_inspect_names_the_pod(harness):
    uid = harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    session = harness.agent.exec("default", "web", "main", ["echo", "hi"])
    assert session.wait() == 0
    assert ("exec_stream", harness.container_id(uid), ("echo", "hi"), False) in harness.runtime.calls
    facts = harness.agent.inspect("default", "web")
    assert facts["pod"]["uid"] == uid and facts["pod"]["ip"] == "10.244.0.2"
    with pytest.raises(errors.NotFound):
        harness.agent.inspect("default", "nothing")


def test_logs_survive_a_cluster_stop_and_leftover_pod_directories_are_removed_on_start(harness):
    uid = harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    leftover = harness.home_path / "pods" / "not-a-pod-any-more"
    leftover.mkdir(parents=True)
    harness.stop_node()
    assert (harness.home_path / "pods" / uid).is_dir()

    again = harness.restarted()
    assert (again.home_path / "pods" / uid).is_dir()
    assert not leftover.exists()


def test_an_adopted_sandbox_with_a_broken_network_is_recreated_and_counts_a_restart(harness):
    """kill -9 during a sandbox's creation can leave it without veth, eth0 or address: `start` must not
    adopt it as Running but replace it, as kubelet does on SandboxChanged."""
    uid = harness.create_pod("web", [{"name": "main"}])
    healthy = harness.create_pod("healthy", [{"name": "main"}])
    harness.sync()
    first_pause = harness.runtime.sandboxes[uid].pause_pid
    first_container = harness.container_id(uid)
    healthy_pause = harness.runtime.sandboxes[healthy].pause_pid
    harness.runtime.break_sandbox_network(uid, "the pod has no eth0")

    again = harness.restarted()
    assert again.runtime.sandboxes[uid].pause_pid != first_pause
    assert again.runtime.check_sandbox_network(again.runtime.sandboxes[uid]) == ""
    status = again.status("web")
    assert status["restartCount"] == 1 and "running" in status["state"]
    assert status["lastState"]["terminated"]["containerID"].endswith(first_container), "the old container was stopped"
    assert ("SandboxChanged", "Pod sandbox changed, it will be killed and re-created.") in again.events()
    assert again.runtime.sandboxes[healthy].pause_pid == healthy_pause
    assert again.status("healthy")["restartCount"] == 0
