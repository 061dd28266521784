"""The node agent's pod lifecycle rules of issue 10.5: activeDeadlineSeconds, the first restart of a
crashed container (the back-off curve itself is in test_backoff.py), the termination message."""

import os
import signal

import pytest

from tests.unit.agent_harness import AgentHarness

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def kills(harness) -> list[tuple[str, int]]:
    return [call[1:] for call in harness.runtime.calls if call[0] == "kill_container"]


def test_a_pod_past_its_active_deadline_fails_with_deadline_exceeded_and_its_containers_stop(harness):
    uid = harness.create_pod("job", [{"name": "main"}], activeDeadlineSeconds=30, terminationGracePeriodSeconds=5)
    harness.sync()
    main = harness.container_id(uid)
    harness.runtime.ignore_sigterm(main)
    harness.advance(29)
    assert harness.pod("job")["status"]["phase"] == "Running"
    assert kills(harness) == []

    harness.advance(1)
    status = harness.pod("job")["status"]
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", "DeadlineExceeded", DEADLINE_MESSAGE)
    assert ("DeadlineExceeded", DEADLINE_MESSAGE) in harness.events()
    assert kills(harness) == [(main, signal.SIGTERM)]
    assert uid in harness.runtime.sandboxes, "the container has its grace period to stop"

    harness.advance(5)
    assert (main, signal.SIGKILL) in kills(harness)
    assert uid not in harness.runtime.sandboxes and harness.ipam.allocations() == {}
    pod = harness.pod("job")
    assert pod["status"]["phase"] == "Failed" and pod["status"]["reason"] == "DeadlineExceeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["signal"] == signal.SIGKILL
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0, "nothing is restarted past the deadline"


def test_the_active_deadline_counts_from_the_pods_start_across_container_restarts(harness):
    uid = harness.create_pod("crasher", [{"name": "main"}], activeDeadlineSeconds=60)
    harness.sync()
    for _ in range(2):
        harness.runtime.exit_container(harness.container_id(uid), 1)
        harness.advance(20)
    assert harness.pod("crasher")["status"]["phase"] == "Running"
    harness.advance(20)
    assert harness.pod("crasher")["status"]["reason"] == "DeadlineExceeded"


def test_a_pod_without_a_deadline_runs_on(harness):
    harness.create_pod("server", [{"name": "main"}])
    harness.sync()
    harness.advance(10_000)
    status = harness.pod("server")["status"]
    assert status["phase"] == "Running" and "reason" not in status


def test_a_pod_failed_for_its_deadline_stays_failed_after_the_agent_restarts(harness):
    harness.create_pod("job", [{"name": "main"}], activeDeadlineSeconds=10, terminationGracePeriodSeconds=0)
    harness.sync()
    harness.advance(10)
    again = harness.restarted()
    status = again.pod("job")["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")


def test_the_first_restart_of_a_crashed_container_is_immediate_and_the_second_backs_off(harness):
    uid = harness.create_pod("crasher", [{"name": "main"}])
    harness.sync()
    harness.runtime.exit_container(harness.container_id(uid), 1)
    harness.sync()
    assert harness.status("crasher")["restartCount"] == 1
    harness.runtime.exit_container(harness.container_id(uid), 1)
    harness.sync()
    assert harness.status("crasher")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    harness.advance(10)
    assert harness.status("crasher")["restartCount"] == 2


def message_file(harness, uid: str, name: str = "main") -> str:
    """The host file mounted at the newest instance's terminationMessagePath."""
    state = harness.runtime.container_for(uid, name)
    config = harness.runtime.container_configs[state.id]
    return next(mount.source for mount in config.mounts if mount.destination == "/dev/termination-log")


def write_log(state, lines: list[str]) -> None:
    os.makedirs(os.path.dirname(state.log_path), exist_ok=True)
    with open(state.log_path, "w") as log:
        for line in lines:
            log.write(f"2027-01-15T08:00:00.000000000Z stderr F {line}\n")


def test_the_termination_message_file_is_mounted_and_its_text_lands_in_the_terminated_state_then_last_state(harness):
    uid = harness.create_pod("job", [{"name": "main"}])
    harness.sync()
    path = message_file(harness, uid)
    assert os.stat(path).st_mode & 0o777 == 0o666, "any container user may write it"
    with open(path, "w") as file:
        file.write("x" * 5000 + "the reason I stopped")
    harness.runtime.exit_container(harness.container_id(uid), 1)
    harness.sync()
    last = harness.status("job")["lastState"]["terminated"]
    assert last["message"].endswith("the reason I stopped") and len(last["message"]) == 4096
    assert harness.runtime.container_for(uid, "main").attempt == 1
    assert message_file(harness, uid) != path, "each instance has its own file"


def test_a_custom_termination_message_path_is_mounted_there(harness):
    uid = harness.create_pod("job", [{"name": "main", "terminationMessagePath": "/tmp/why"}], restartPolicy="Never")
    harness.sync()
    config = harness.runtime.container_configs[harness.container_id(uid)]
    mount = next(m for m in config.mounts if m.destination == "/tmp/why")
    with open(mount.source, "w") as file:
        file.write("done")
    harness.runtime.exit_container(harness.container_id(uid), 0)
    harness.sync()
    assert harness.status("job")["state"]["terminated"]["message"] == "done"


@pytest.mark.parametrize("policy, exit_code, expected", [
    ("FallbackToLogsOnError", 1, "line 20\n" + "".join(f"line {n}\n" for n in range(21, 100))),
    ("FallbackToLogsOnError", 0, None),  # only on error
    ("File", 1, None),  # only with the fallback policy
])
def test_fallback_to_logs_on_error_takes_the_last_80_lines_of_the_log(harness, policy, exit_code, expected):
    uid = harness.create_pod("job", [{"name": "main", "terminationMessagePolicy": policy}], restartPolicy="Never")
    harness.sync()
    write_log(harness.runtime.container_for(uid, "main"), [f"line {n}" for n in range(100)])
    harness.runtime.exit_container(harness.container_id(uid), exit_code)
    harness.sync()
    message = harness.status("job")["state"]["terminated"].get("message")
    assert message == expected


def test_the_log_fallback_keeps_at_most_2048_bytes(harness):
    uid = harness.create_pod("job", [{"name": "main", "terminationMessagePolicy": "FallbackToLogsOnError"}],
                             restartPolicy="Never")
    harness.sync()
    write_log(harness.runtime.container_for(uid, "main"), ["y" * 100] * 50 + ["the end"])
    harness.runtime.exit_container(harness.container_id(uid), 2)
    harness.sync()
    message = harness.status("job")["state"]["terminated"]["message"]
    assert len(message.encode()) == 2048 and message.endswith("the end\n")


def test_a_message_written_to_the_file_wins_over_the_log_fallback(harness):
    uid = harness.create_pod("job", [{"name": "main", "terminationMessagePolicy": "FallbackToLogsOnError"}],
                             restartPolicy="Never")
    harness.sync()
    write_log(harness.runtime.container_for(uid, "main"), ["noise"])
    with open(message_file(harness, uid), "w") as file:
        file.write("explicit")
    harness.runtime.exit_container(harness.container_id(uid), 1)
    harness.sync()
    assert harness.status("job")["state"]["terminated"]["message"] == "explicit"
