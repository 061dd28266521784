"""postStart and preStop hooks in the node agent: when they run, what their time counts against,
and what a failure does (kubelet's events and messages)."""

import http.server
import signal
import threading

import pytest

from minikube_py.runtime.types import ExecResult
from tests.unit.agent_harness import AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def hooked(lifecycle: dict, **fields) -> list[dict]:
    return [{"name": "main", "lifecycle": lifecycle, **fields}]


def signals(harness, container_id: str) -> list[int]:
    return [call[2] for call in harness.runtime.calls if call[0] == "kill_container" and call[1] == container_id]


def execs(harness) -> list[tuple[str, ...]]:
    return [call[2] for call in harness.runtime.calls if call[0] == "exec_sync"]


def test_a_post_start_exec_hook_runs_in_the_container_right_after_it_starts(harness):
    harness.create_pod("web", hooked({"postStart": {"exec": {"command": ["sh", "-c", "echo hi > /started"]}}}))
    harness.sync()
    names = harness.runtime.call_names()
    assert names.index("exec_sync") == names.index("start_container") + 1
    assert execs(harness) == [("sh", "-c", "echo hi > /started")]
    status = harness.status("web")
    assert "running" in status["state"] and status["ready"] is True
    assert harness.pod("web")["status"]["phase"] == "Running"


def test_the_container_is_not_running_or_ready_until_its_post_start_hook_returns(harness):
    harness.create_pod("web", hooked({"postStart": {"sleep": {"seconds": 5}}}))
    harness.sync()
    status = harness.status("web")
    assert status["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert status["ready"] is False and status["started"] is False
    assert harness.pod("web")["status"]["phase"] == "Pending"
    assert harness.condition("web", "Ready")["status"] == "False"
    harness.advance(4)
    assert "waiting" in harness.status("web")["state"]
    harness.advance(1)
    status = harness.status("web")
    assert "running" in status["state"] and status["ready"] is True
    assert harness.pod("web")["status"]["phase"] == "Running"


def test_probes_begin_only_after_the_post_start_hook(harness):
    uid = harness.create_pod("web", hooked({"postStart": {"sleep": {"seconds": 5}}},
                                           readinessProbe={"exec": {"command": ["ready"]}, "periodSeconds": 1}))
    harness.sync()
    harness.advance(3)
    assert ("ready",) not in execs(harness)
    harness.advance(2)
    assert ("ready",) in execs(harness)
    assert harness.status("web")["ready"] is True and harness.container_id(uid)


def test_a_failing_post_start_hook_kills_the_container_with_kubelets_events_and_it_restarts(harness):
    harness.runtime.script_exec_by_name("main", ExecResult(1, b"", b"no config\n"))
    harness.create_pod("web", hooked({"postStart": {"exec": {"command": ["sh", "-c", "exit 1"]}}}),
                             terminationGracePeriodSeconds=5)
    harness.sync()
    assert ("FailedPostStartHook", "PostStartHook failed") in harness.events()
    assert ("Killing", "FailedPostStartHook") in harness.events()
    status = harness.status("web")
    # Killed (SIGTERM honoured at once by the fake) and restarted at once: the first restart.
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["signal"] == signal.SIGTERM


def test_a_post_start_failure_shows_post_start_hook_error_with_kubelets_message_while_the_container_stops(harness):
    harness.runtime.script_exec_by_name("main", ExecResult(1, b"out\n", b"no config\n"))
    uid = harness.create_pod("web", hooked({"postStart": {"exec": {"command": ["sh", "-c", "exit 1"]}}}),
                             terminationGracePeriodSeconds=5)
    harness.runtime.ignore_sigterm(f"main-0-{uid[:8]}")
    harness.sync()
    waiting = harness.status("web")["state"]["waiting"]
    assert waiting["reason"] == "PostStartHookError"
    assert waiting["message"] == (
        f'Exec lifecycle hook ([sh -c exit 1]) for Container "main" in Pod "web_default({uid})" failed - '
        f'error: command \'sh -c exit 1\' exited with 1: no config\n, message: "out\\nno config\\n"')
    harness.advance(5)
    assert signals(harness, f"main-0-{uid[:8]}") == [signal.SIGTERM, signal.SIGKILL]
    assert harness.status("web")["restartCount"] == 1


def test_a_tcp_socket_hook_is_accepted_but_fails_when_it_runs_as_in_kubernetes(harness):
    harness.create_pod("web", hooked({"postStart": {"tcpSocket": {"port": 80}}}))
    harness.sync()
    assert ("FailedPostStartHook", "PostStartHook failed") in harness.events()


def test_a_pre_stop_sleep_delays_sigterm_and_its_time_counts_against_the_grace_period(harness):
    uid = harness.create_pod("web", hooked({"preStop": {"sleep": {"seconds": 5}}}), terminationGracePeriodSeconds=20)
    harness.sync()
    main = harness.container_id(uid)
    harness.runtime.ignore_sigterm(main)
    harness.registry.delete("pods", "default", "web")
    harness.sync()
    assert ("Killing", "Stopping container main") in harness.events()
    assert signals(harness, main) == []
    harness.advance(4.9)
    assert signals(harness, main) == []
    harness.advance(0.1)
    assert signals(harness, main) == [signal.SIGTERM]
    harness.advance(14.9)
    assert signals(harness, main) == [signal.SIGTERM], "SIGKILL comes 20 s after the stop began, not 20 s after SIGTERM"
    harness.advance(0.1)
    assert signals(harness, main) == [signal.SIGTERM, signal.SIGKILL]


def test_a_pre_stop_hook_that_uses_up_the_grace_period_still_leaves_two_seconds_before_sigkill(harness):
    uid = harness.create_pod("web", hooked({"preStop": {"sleep": {"seconds": 10}}}), terminationGracePeriodSeconds=10)
    harness.sync()
    main = harness.container_id(uid)
    harness.runtime.ignore_sigterm(main)
    harness.registry.delete("pods", "default", "web")
    harness.sync()
    harness.advance(10)
    assert signals(harness, main) == [signal.SIGTERM]
    harness.advance(1.9)
    assert signals(harness, main) == [signal.SIGTERM]
    harness.advance(0.1)
    assert signals(harness, main) == [signal.SIGTERM, signal.SIGKILL]


def test_a_failing_pre_stop_hook_writes_failed_pre_stop_hook_and_sigterm_follows_at_once(harness):
    uid = harness.create_pod("web", hooked({"preStop": {"exec": {"command": ["drain"]}}}))
    harness.sync()
    main = harness.container_id(uid)
    harness.runtime.script_exec(main, ExecResult(2, b"", b"drain failed"))
    harness.registry.delete("pods", "default", "web")
    harness.sync()
    assert ("FailedPreStopHook", "PreStopHook failed") in harness.events()
    assert signals(harness, main) == [signal.SIGTERM]
    assert execs(harness) == [("drain",)]


def test_no_pre_stop_hook_runs_for_a_grace_period_of_zero(harness):
    uid = harness.create_pod("web", hooked({"preStop": {"exec": {"command": ["drain"]}}}))
    harness.sync()
    main = harness.container_id(uid)
    harness.agent.stop(stop_pods=True, grace_period=0)  # `minikube-py stop --grace-period 0`
    assert execs(harness) == []
    assert signals(harness, main) == [signal.SIGKILL]


def test_a_liveness_kill_runs_the_pre_stop_hook_too(harness):
    uid = harness.create_pod("web", hooked({"preStop": {"exec": {"command": ["drain"]}}},
                                           livenessProbe={"exec": {"command": ["alive"]}, "periodSeconds": 1,
                                                          "failureThreshold": 1}))
    harness.sync()
    main = harness.container_id(uid)
    harness.runtime.script_exec(main, lambda argv: ExecResult(1 if argv == ["alive"] else 0, b"", b""))
    harness.advance(1)
    assert ("drain",) in execs(harness)
    assert signals(harness, main)[0] == signal.SIGTERM


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self):  # noqa: N802 (the http.server name)
        _Recorder.paths.append(self.path)
        self.send_response(500)  # any answer will do: kubelet does not look at the status
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_http_get_pre_stop_hook_calls_the_container_and_any_answer_is_success(harness):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        uid = harness.create_pod("web", hooked({"preStop": {"httpGet": {"host": "127.0.0.1", "port": port,
                                                                         "path": "/quit"}}}))
        harness.sync()
        main = harness.container_id(uid)
        harness.registry.delete("pods", "default", "web")
        harness.sync()
        assert _Recorder.paths == ["/quit"]
        assert not [reason for reason, _ in harness.events() if reason == "FailedPreStopHook"]
        assert signals(harness, main) == [signal.SIGTERM]
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_get_hook_nobody_answers_fails_with_kubelets_message(harness):
    probe = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    port = probe.server_address[1]
    probe.server_close()  # nothing listens there now
    uid = harness.create_pod("web", hooked({"postStart": {"httpGet": {"host": "127.0.0.1", "port": port, "path": "/up"}}}),
                             terminationGracePeriodSeconds=5)
    harness.runtime.ignore_sigterm(f"main-0-{uid[:8]}")
    harness.sync()
    waiting = harness.status("web")["state"]["waiting"]
    assert waiting["reason"] == "PostStartHookError"
    assert waiting["message"] == (
        f'HTTP lifecycle hook (/up) for Container "main" in Pod "web_default({uid})" failed - error: '
        f'Get "http://127.0.0.1:{port}/up": dial tcp 127.0.0.1:{port}: connect: connection refused')
