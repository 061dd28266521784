"""Probes: results flip only after enough consecutive outcomes; delays; startup gates the others."""

import http.server
import socket
import threading

import pytest

from minikube_py.agent.probes import (
    FAILURE,
    LIVENESS,
    READINESS,
    STARTUP,
    SUCCESS,
    UNKNOWN,
    ProbeManager,
    ProbeSpec,
    ProbeState,
    ProbeTarget,
    run_probe,
)
from minikube_py.api.core import Container
from minikube_py.clock import FakeClock
from minikube_py.runtime.fake import FakeRuntime
from minikube_py.runtime.types import ContainerConfig, ExecResult, SandboxConfig

OK = ExecResult(0, b"", b"")
BAD = ExecResult(1, b"not there\n", b"")


def test_initial_results_are_readiness_failure_liveness_success_startup_unknown():
    assert ProbeState(READINESS).result == FAILURE
    assert ProbeState(LIVENESS).result == SUCCESS
    assert ProbeState(STARTUP).result == UNKNOWN


def test_failure_needs_failure_threshold_consecutive_failures():
    state = ProbeState(LIVENESS, success_threshold=1, failure_threshold=3)
    assert [state.observe(False), state.observe(False)] == [False, False]
    assert state.result == SUCCESS
    state.observe(True)  # a success in between resets the count
    assert [state.observe(False), state.observe(False), state.observe(False)] == [False, False, True]
    assert state.result == FAILURE


def test_readiness_needs_success_threshold_consecutive_successes():
    state = ProbeState(READINESS, success_threshold=2, failure_threshold=1)
    assert state.observe(True) is False and state.result == FAILURE
    assert state.observe(True) is True and state.result == SUCCESS
    assert state.observe(False) is True and state.result == FAILURE


def test_probe_defaults_follow_kubernetes():
    container = Container.model_validate({"name": "c", "image": "busybox",
                                          "livenessProbe": {"exec": {"command": ["true"]}}})
    spec = ProbeSpec.from_probe(LIVENESS, container.liveness_probe)
    assert (spec.initial_delay, spec.period, spec.timeout, spec.success_threshold, spec.failure_threshold) == (0, 10, 1, 1, 3)


class Harness:
    def __init__(self, probes: dict):
        self.clock = FakeClock()
        self.runtime = FakeRuntime(self.clock)
        sandbox = self.runtime.create_sandbox(SandboxConfig("uid1", "p", "default", "p", "10.0.0.2", 24, "10.0.0.1"))
        self.container = Container.model_validate({"name": "main", "image": "busybox", **probes})
        state = self.runtime.start_container(sandbox, ContainerConfig("uid1", "main", 0, "busybox", ["sleep", "1"]))
        self.container_id = state.id
        self.results: list[tuple[str, bool, bool]] = []
        self.manager = ProbeManager(self.runtime, self.clock,
                                    lambda worker, ok, detail, changed: self.results.append((worker.spec.kind, ok, changed)))
        self.manager.add_container("uid1", self.container, ProbeTarget(state.id, "10.0.0.2"), self.clock.monotonic())

    def script(self, kind_outcomes):
        """Exec results by the probe's command (its first word names the probe kind)."""
        self.runtime.script_exec(self.container_id, lambda argv: kind_outcomes[argv[0]])

    def advance(self, seconds: float) -> int:
        self.clock.advance(seconds)
        return self.manager.run_due()

    def result(self, kind: str) -> str:
        return self.manager.results(self.container_id)[kind]


def exec_probe(word: str, **fields) -> dict:
    return {"exec": {"command": [word]}, **fields}


def test_the_first_probe_waits_for_initial_delay_then_runs_every_period():
    harness = Harness({"livenessProbe": exec_probe("live", initialDelaySeconds=5, periodSeconds=3)})
    harness.script({"live": OK})
    assert harness.advance(4.9) == 0
    assert harness.advance(0.1) == 1
    assert harness.advance(2.9) == 0
    assert harness.advance(0.1) == 1


def test_liveness_turns_failure_after_failure_threshold():
    harness = Harness({"livenessProbe": exec_probe("live", periodSeconds=1, failureThreshold=2)})
    harness.script({"live": BAD})
    harness.advance(0)
    assert harness.result(LIVENESS) == SUCCESS
    harness.advance(1)
    assert harness.result(LIVENESS) == FAILURE
    assert harness.results == [(LIVENESS, False, False), (LIVENESS, False, True)]


def test_liveness_and_readiness_wait_for_the_startup_probe_and_their_delays_count_from_it():
    harness = Harness({
        "startupProbe": exec_probe("start", periodSeconds=1, failureThreshold=30),
        "livenessProbe": exec_probe("live", periodSeconds=1),
        "readinessProbe": exec_probe("ready", periodSeconds=1, initialDelaySeconds=2),
    })
    outcomes = {"start": BAD, "live": OK, "ready": OK}
    harness.script(outcomes)
    for _ in range(3):
        harness.advance(1)
    assert {kind for kind, _, _ in harness.results} == {STARTUP}
    assert harness.result(STARTUP) == UNKNOWN and harness.result(READINESS) == FAILURE

    outcomes["start"] = OK
    harness.advance(1)
    assert harness.result(STARTUP) == SUCCESS
    harness.advance(0)  # liveness starts now; readiness only 2 s later
    assert harness.results[-1][0] == LIVENESS
    assert harness.result(READINESS) == FAILURE
    harness.advance(2)
    assert harness.result(READINESS) == SUCCESS
    calls_before = len(harness.results)
    harness.advance(1)
    assert STARTUP not in {kind for kind, _, _ in harness.results[calls_before:]}, "startup probing stops once it succeeded"


def test_removed_containers_are_not_probed_any_more():
    harness = Harness({"livenessProbe": exec_probe("live", periodSeconds=1)})
    harness.script({"live": OK})
    harness.manager.remove_container(harness.container_id)
    assert harness.advance(5) == 0
    assert harness.manager.next_due() is None


@pytest.fixture
def http_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        seen_headers: list = []

        def do_GET(self):
            Handler.seen_headers.append(dict(self.headers))
            self.send_response(200 if self.path == "/healthz" else 500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, Handler
    server.shutdown()
    server.server_close()


def http_spec(path: str, port) -> ProbeSpec:
    container = Container.model_validate({"name": "c", "image": "busybox", "ports": [{"name": "web", "containerPort": port}],
                                          "readinessProbe": {"httpGet": {"path": path, "port": "web"}}})
    return ProbeSpec.from_probe(READINESS, container.readiness_probe)


def test_http_probe_succeeds_on_2xx_fails_on_500_and_says_who_asked(http_server):
    server, handler = http_server
    port = server.server_address[1]
    target = ProbeTarget("c1", "127.0.0.1", {"web": port})
    assert run_probe(http_spec("/healthz", port), target, runtime=None) == (True, "")
    assert run_probe(http_spec("/broken", port), target, runtime=None) == (False, "HTTP probe failed with statuscode: 500")
    assert handler.seen_headers[0]["User-Agent"] == "kube-probe/1.32"


def test_tcp_probe_fails_with_a_dial_message_when_nothing_listens():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    container = Container.model_validate({"name": "c", "image": "busybox",
                                          "livenessProbe": {"tcpSocket": {"port": port}}})
    spec = ProbeSpec.from_probe(LIVENESS, container.liveness_probe)
    listener.listen()
    assert run_probe(spec, ProbeTarget("c1", "127.0.0.1"), runtime=None)[0] is True
    listener.close()
    ok, detail = run_probe(spec, ProbeTarget("c1", "127.0.0.1"), runtime=None)
    assert ok is False and detail.startswith(f"dial tcp 127.0.0.1:{port}: connect:")


def test_the_probe_timer_thread_survives_a_probe_whose_period_overflows_every_wait():
    """periodSeconds 1e20 once killed the node's probe timer; a later pod's probes then never ran."""
    from minikube_py.clock import Clock

    results: list[tuple[str, bool]] = []
    arrived = threading.Condition()

    def on_result(worker, success, detail, changed):
        with arrived:
            results.append((worker.container_name, success))
            arrived.notify_all()

    runtime = FakeRuntime()
    manager = ProbeManager(runtime, Clock(), on_result)
    manager.start()
    try:
        def probed(name: str) -> bool:
            with arrived:
                return arrived.wait_for(lambda: any(done == name for done, _ in results), timeout=10)

        bad = Container.model_validate({"name": "bad", "image": "busybox", "livenessProbe": {
            "exec": {"command": ["true"]}, "periodSeconds": 1}})
        bad.liveness_probe.period_seconds = int(1e20)  # past validation (which rejects it), as from an old store
        manager.add_container("pod-a", bad, ProbeTarget("bad-id", "10.0.0.1", {}), Clock().monotonic())
        assert probed("bad")
        good = Container.model_validate({"name": "good", "image": "busybox", "livenessProbe": {
            "exec": {"command": ["true"]}, "periodSeconds": 1}})
        manager.add_container("pod-b", good, ProbeTarget("good-id", "10.0.0.2", {}), Clock().monotonic())
        assert probed("good"), "the timer thread must still hand out probes"
    finally:
        manager.stop()
