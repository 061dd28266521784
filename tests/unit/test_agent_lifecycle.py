"""The node agent's pod lifecycle rules of issue 10.5: activeDeadlineSeconds, and the first restart
of a crashed container (the back-off curve itself is in test_backoff.py)."""

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
