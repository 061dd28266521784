"""Liveness, readiness and startup probes: when to run them, how, and what their results mean.

Kubernetes' rules (semantics.md 3.6): before the first probe, readiness is Failure, liveness
Success, startup Unknown; a result flips only after `successThreshold` / `failureThreshold`
consecutive outcomes; liveness and readiness wait until the startup probe has succeeded, and their
initialDelaySeconds counts from then (or from the container's start when there is no startup
probe). A probe whose handler errors counts as a failure.

All probes of the node share one timer heap and a small thread pool, so a probe stuck on its
timeout never delays another one and an idle node runs no loop at all. `ProbeManager.run_due()`
runs what is due on the calling thread: unit tests drive it with a FakeClock, the agent's timer
thread calls it when the earliest probe is due.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from minikube_py.clock import Clock
from minikube_py.runtime.types import ContainerRuntimeError, Runtime

log = logging.getLogger(__name__)

SUCCESS, FAILURE, UNKNOWN = "Success", "Failure", "Unknown"
LIVENESS, READINESS, STARTUP = "liveness", "readiness", "startup"
INITIAL_RESULT = {READINESS: FAILURE, LIVENESS: SUCCESS, STARTUP: UNKNOWN}
USER_AGENT = "kube-probe/1.32"
# The timer thread sleeps at most this long at a time, so no probe time can overflow a wait.
MAX_TIMER_WAIT_SECONDS = 3600.0
TIMER_ERROR_PAUSE_SECONDS = 1.0


@dataclass
class ProbeSpec:
    """A probe with Kubernetes' defaults applied; `handler` is the model's exec/httpGet/tcpSocket."""

    kind: str
    handler_type: str  # "exec", "httpGet" or "tcpSocket"
    handler: object
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @staticmethod
    def from_probe(kind: str, probe) -> "ProbeSpec":
        handlers = [(handler_type, getattr(probe, attribute, None))
                    for attribute, handler_type in (("exec", "exec"), ("http_get", "httpGet"), ("tcp_socket", "tcpSocket"))]
        handler_type, handler = next(((name, found) for name, found in handlers if found is not None), ("", None))
        if handler is None:
            raise ValueError(f"{kind}Probe: needs exactly one of exec, httpGet, tcpSocket")

        def value(name: str, default: int) -> int:
            given = getattr(probe, name, None)
            return default if given is None else given

        return ProbeSpec(
            kind=kind,
            handler_type=handler_type,
            handler=handler,
            initial_delay=value("initial_delay_seconds", 0),
            period=max(1, value("period_seconds", 10)),
            timeout=max(1, value("timeout_seconds", 1)),
            success_threshold=max(1, value("success_threshold", 1)),
            failure_threshold=max(1, value("failure_threshold", 3)),
        )


@dataclass
class ProbeState:
    """The result of one probe of one container, flipped only by enough consecutive outcomes."""

    kind: str
    success_threshold: int = 1
    failure_threshold: int = 3
    result: str = ""
    consecutive_successes: int = 0
    consecutive_failures: int = 0

    def __post_init__(self) -> None:
        self.result = self.result or INITIAL_RESULT[self.kind]

    def observe(self, success: bool) -> bool:
        """Count one outcome; True when the result changed."""
        if success:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            reached = self.consecutive_successes >= self.success_threshold
            new = SUCCESS if reached else self.result
        else:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
            reached = self.consecutive_failures >= self.failure_threshold
            new = FAILURE if reached else self.result
        changed = new != self.result
        self.result = new
        return changed


@dataclass
class ProbeTarget:
    """What a probe talks to: the container (for exec) and the pod's address and ports."""

    container_id: str
    pod_ip: str
    named_ports: dict[str, int] = field(default_factory=dict)


def resolve_port(port: int | str, target: ProbeTarget) -> int:
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    if port in target.named_ports:
        return target.named_ports[port]
    raise ValueError(f"port {port!r} is not a number nor the name of one of the container's ports")


def run_probe(spec: ProbeSpec, target: ProbeTarget, runtime) -> tuple[bool, str]:
    """Run the handler once: (success, detail for the Unhealthy event, worded as kubelet's Go errors)."""
    handler = spec.handler
    if spec.handler_type == "exec":
        try:
            result = runtime.exec_sync(target.container_id, list(handler.command or []), timeout=spec.timeout)
        except ContainerRuntimeError as error:
            return False, error.message
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        if result.exit_code == 0:
            return True, output
        return False, output or f"command {handler.command!r} exited with {result.exit_code}"
    host = getattr(handler, "host", None) or target.pod_ip
    try:
        port = resolve_port(handler.port, target)
    except ValueError as error:
        return False, str(error)
    if spec.handler_type == "tcpSocket":
        try:
            with socket.create_connection((host, port), timeout=spec.timeout):
                return True, ""
        except TimeoutError:
            return False, f"dial tcp {host}:{port}: i/o timeout"
        except OSError as error:
            return False, f"dial tcp {host}:{port}: connect: {go_error_text(error)}"
    try:
        return _http_get(handler, host, port, spec.timeout)
    except TimeoutError:
        return False, f'Get "{request_url(handler, host, port)}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except OSError as error:
        return False, f'Get "{request_url(handler, host, port)}": dial tcp {host}:{port}: connect: {go_error_text(error)}'
    except http.client.HTTPException as error:
        return False, f'Get "{request_url(handler, host, port)}": malformed HTTP response: {error!r}'


def go_error_text(error: Exception) -> str:
    """`connection refused` as Go prints it, not Python's `Connection refused`."""
    text = getattr(error, "strerror", None) or str(error)
    return text[:1].lower() + text[1:]


def request_url(handler, host: str, port: int) -> str:
    scheme = (getattr(handler, "scheme", None) or "HTTP").lower()
    return f"{scheme}://{host}:{port}{handler.path or '/'}"


def _http_get(handler, host: str, port: int, timeout: float) -> tuple[bool, str]:
    if (getattr(handler, "scheme", None) or "HTTP").upper() == "HTTPS":
        import ssl

        connection = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                 context=ssl._create_unverified_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in getattr(handler, "http_headers", None) or []:
        headers[header.name] = header.value
    try:
        connection.request("GET", handler.path or "/", headers=headers)
        response = connection.getresponse()
        response.read(10 * 1024)
    finally:
        connection.close()
    if 200 <= response.status < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {response.status}"


@dataclass
class ProbeWorker:
    """One probe of one container instance; dropped with the container."""

    pod_uid: str
    container_name: str
    spec: ProbeSpec
    target: ProbeTarget
    state: ProbeState
    gate: "ProbeWorker | None" = None  # the startup probe liveness/readiness wait for
    due: float = 0.0
    running: bool = False
    active: bool = True


# Called with (worker, success, detail, changed) after every probe run.
ResultHandler = Callable[[ProbeWorker, bool, str, bool], None]


class ProbeManager:
    def __init__(self, runtime: Runtime, clock: Clock, on_result: ResultHandler, pool_size: int = 4):
        self._runtime = runtime
        self._clock = clock
        self._on_result = on_result
        self._heap: list[tuple[float, int, ProbeWorker]] = []
        self._sequence = itertools.count()
        self._by_container: dict[str, list[ProbeWorker]] = {}
        self._lock = threading.Condition()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = pool_size
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ---- containers come and go

    def add_container(self, pod_uid: str, container, target: ProbeTarget, started_at_monotonic: float) -> None:
        """Start probing a freshly started (or adopted) container instance."""
        workers: dict[str, ProbeWorker] = {}
        for kind, attribute in ((STARTUP, "startup_probe"), (LIVENESS, "liveness_probe"), (READINESS, "readiness_probe")):
            probe = getattr(container, attribute, None)
            if probe is None:
                continue
            spec = ProbeSpec.from_probe(kind, probe)
            state = ProbeState(kind, spec.success_threshold, spec.failure_threshold)
            workers[kind] = ProbeWorker(pod_uid, container.name, spec, target, state, gate=workers.get(STARTUP))
        with self._lock:
            for worker in self._by_container.pop(target.container_id, []):
                worker.active = False
            if not workers:
                return  # most containers have no probes: nothing to keep, no timer to wake
            self._by_container[target.container_id] = list(workers.values())
            for worker in workers.values():
                if worker.gate is None:
                    self._schedule(worker, started_at_monotonic + worker.spec.initial_delay)
            self._lock.notify_all()

    def remove_container(self, container_id: str) -> None:
        with self._lock:
            for worker in self._by_container.pop(container_id, []):
                worker.active = False

    def remove_pod(self, pod_uid: str) -> None:
        with self._lock:
            for container_id in [cid for cid, ws in self._by_container.items() if ws and ws[0].pod_uid == pod_uid]:
                for worker in self._by_container.pop(container_id):
                    worker.active = False

    def results(self, container_id: str) -> dict[str, str]:
        """{kind: result} for the probes the container has."""
        with self._lock:
            return {worker.spec.kind: worker.state.result for worker in self._by_container.get(container_id, [])}

    def next_due(self) -> float | None:
        with self._lock:
            self._drop_inactive()
            return self._heap[0][0] if self._heap else None

    # ---- running them

    def run_due(self) -> int:
        """Run, on this thread, every probe that is due now; returns how many ran."""
        ran = 0
        for worker in self._take_due():
            self._probe(worker)
            ran += 1
        return ran

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self._pool_size, thread_name_prefix="probe")
        self._thread = threading.Thread(target=self._timer_loop, name="probe-timers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _timer_loop(self) -> None:
        """Wait for the earliest probe, hand what is due to the pool; survives anything one probe
        brings (a period of 1e20 seconds, a pool that refuses work) with a log line."""
        while True:
            try:
                with self._lock:
                    if self._stopping:
                        return
                    self._drop_inactive()
                    wait = None if not self._heap else max(0.0, self._heap[0][0] - self._clock.monotonic())
                    if wait is None or wait > 0:
                        # A far-away probe still wakes the loop now and then: no wait overflows.
                        self._lock.wait(min(wait, MAX_TIMER_WAIT_SECONDS) if wait is not None else None)
                        continue
                for worker in self._take_due():
                    self._pool.submit(self._probe, worker)
            except Exception:
                log.exception("probe timer: unexpected error; carrying on")
                with self._lock:
                    if not self._stopping:
                        self._lock.wait(TIMER_ERROR_PAUSE_SECONDS)

    def _take_due(self) -> list[ProbeWorker]:
        now = self._clock.monotonic()
        due = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                _, _, worker = heapq.heappop(self._heap)
                if worker.active:
                    worker.running = True
                    due.append(worker)
        return due

    def _probe(self, worker: ProbeWorker) -> None:
        try:
            success, detail = run_probe(worker.spec, worker.target, self._runtime)
        except Exception as error:  # a probe must never take the timer or pool thread down
            success, detail = False, str(error) or type(error).__name__
        with self._lock:
            worker.running = False
            if not worker.active:
                return
            changed = worker.state.observe(success)
            if worker.spec.kind == STARTUP and worker.state.result == SUCCESS:
                # Started: the startup probe is done; liveness and readiness begin their delays now.
                worker.active = False
                now = self._clock.monotonic()
                for other in self._by_container.get(worker.target.container_id, []):
                    if other.gate is worker:
                        other.gate = None
                        self._schedule(other, now + other.spec.initial_delay)
            else:
                self._schedule(worker, self._clock.monotonic() + worker.spec.period)
            self._lock.notify_all()
        try:
            self._on_result(worker, success, detail, changed)
        except Exception:
            log.exception("probe %s of %s: handling its result failed", worker.spec.kind, worker.container_name)

    def _schedule(self, worker: ProbeWorker, due: float) -> None:
        worker.due = due
        heapq.heappush(self._heap, (due, next(self._sequence), worker))

    def _drop_inactive(self) -> None:
        while self._heap and not self._heap[0][2].active:
            heapq.heappop(self._heap)
