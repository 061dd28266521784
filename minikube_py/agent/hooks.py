"""Container lifecycle hooks (postStart, preStop): running one handler, and kubelet's messages.

A hook runs beside the pod's sync, never inside it: a postStart command may take minutes and a
preStop sleep most of a grace period, and the agent's few workers serve every pod. `HookRunner.run`
returns a `HookRun` at once. An `exec` or `httpGet` handler runs on the runner's small thread
pool, which wakes the pod (`on_done(pod_uid)`) when it finishes; a `sleep` handler needs no thread
at all: it is finished when the agent's clock passes its end, which the pod's sync asks to be
woken for. What a finished run means (the container is started, or killed; SIGTERM may be sent)
is the sync's to decide (sync.py, termination.py).

The handlers behave as kubelet's (k/k pkg/kubelet/lifecycle/handlers.go): `exec` runs the
command in the container and fails on a non-zero exit; `httpGet` sends a GET to the pod's address
(or `host`) and fails only when no response comes (any status code is fine); `sleep` waits; the
deprecated `tcpSocket`, which the API still accepts, cannot be run and fails. Failure messages
are kubelet's (`Exec lifecycle hook ([sh -c exit 1]) for Container "web" in Pod "web_default(<uid>)"
failed - error: command 'sh -c exit 1' exited with 1: , message: ""`). Without `start()` (unit
tests) an exec or httpGet handler runs at once on the calling thread.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from minikube_py.agent.probes import ProbeTarget, go_error_text, request_url, resolve_port
from minikube_py.clock import Clock
from minikube_py.runtime.types import ContainerRuntimeError, Runtime

log = logging.getLogger(__name__)

POST_START, PRE_STOP = "PostStart", "PreStop"
USER_AGENT = "kube-lifecycle/1.32"
# kubelet gives an exec hook no timeout; the command ends with its container at the latest.
LONGEST_EXEC_SECONDS = 24 * 3600.0
HTTP_TIMEOUT_SECONDS = 10.0
POOL_SIZE = 4


@dataclass
class HookRun:
    """One run of one hook of one container instance."""

    kind: str  # POST_START or PRE_STOP
    pod_uid: str
    container_id: str
    sleep_until: float | None = None  # a sleep handler: done when the monotonic clock passes this
    done: bool = False  # an exec or httpGet handler returned
    error: str = ""  # kubelet's message, when it failed

    @property
    def failed(self) -> bool:
        return bool(self.error)


def describe_go_list(items: list[str]) -> str:
    """A []string as Go's %v prints it: [sh -c exit 1]."""
    return "[" + " ".join(items) + "]"


def go_quote(text: str) -> str:
    """A string as Go's %q prints it (close enough: JSON's escapes)."""
    return json.dumps(text)


class HookRunner:
    def __init__(self, runtime: Runtime, clock: Clock, on_done: Callable[[str], None], pool_size: int = POOL_SIZE):
        self._runtime = runtime
        self._clock = clock
        self._on_done = on_done
        self._pool_size = pool_size
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self._pool_size, thread_name_prefix="hook")

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def finished(self, run: HookRun) -> bool:
        if run.sleep_until is not None:
            return self._clock.monotonic() >= run.sleep_until
        with self._lock:
            return run.done

    def remaining(self, run: HookRun) -> float | None:
        """Seconds until a sleep hook ends (None for the others, which wake the pod themselves)."""
        if run.sleep_until is None:
            return None
        return max(0.0, run.sleep_until - self._clock.monotonic())

    def run(self, kind: str, pod_uid: str, pod_display: str, container, handler, target: ProbeTarget) -> HookRun:
        """Begin running `handler` (a LifecycleHandler) for a container instance."""
        run = HookRun(kind, pod_uid, target.container_id)
        if handler.sleep is not None:
            run.sleep_until = self._clock.monotonic() + max(0, handler.sleep.seconds)
            return run
        if self._pool is None:
            self._execute(run, pod_display, container, handler, target)
        else:
            self._pool.submit(self._execute, run, pod_display, container, handler, target)
        return run

    def _execute(self, run: HookRun, pod_display: str, container, handler, target: ProbeTarget) -> None:
        try:
            error = run_handler(self._runtime, pod_display, container, handler, target)
        except Exception as unexpected:  # a hook must never take a pool thread down
            log.exception("%s hook of %s in %s", run.kind, container.name, pod_display)
            error = f"Cannot run handler: {unexpected}"
        with self._lock:
            run.error, run.done = error, True
        if self._pool is not None:
            self._on_done(run.pod_uid)


def run_handler(runtime: Runtime, pod_display: str, container, handler, target: ProbeTarget) -> str:
    """Run an exec, httpGet or tcpSocket handler to its end: "" on success, else kubelet's message."""
    where = f"for Container {go_quote(container.name)} in Pod {go_quote(pod_display)}"
    if handler.exec is not None:
        command = list(handler.exec.command or [])
        try:
            result = runtime.exec_sync(target.container_id, command, timeout=LONGEST_EXEC_SECONDS)
        except ContainerRuntimeError as error:
            return (f"Exec lifecycle hook ({describe_go_list(command)}) {where} failed - error: {error.message}, "
                    f'message: ""')
        if result.exit_code == 0:
            return ""
        output = (result.stdout + result.stderr).decode(errors="replace")
        failure = f"command '{' '.join(command)}' exited with {result.exit_code}: {result.stderr.decode(errors='replace')}"
        return f"Exec lifecycle hook ({describe_go_list(command)}) {where} failed - error: {failure}, message: {go_quote(output)}"
    if handler.http_get is not None:
        failure = _http_get(handler.http_get, target)
        if not failure:
            return ""
        return f"HTTP lifecycle hook ({handler.http_get.path}) {where} failed - error: {failure}"
    return "Cannot run handler: invalid handler: tcpSocket is not supported as a lifecycle hook handler"


def _http_get(action, target: ProbeTarget) -> str:
    """GET the hook's URL; any answer is a success (kubelet does not look at the status code)."""
    host = action.host or target.pod_ip
    try:
        port = resolve_port(action.port, target)
    except ValueError as error:
        return str(error)
    url = request_url(action, host, port)
    if (action.scheme or "HTTP").upper() == "HTTPS":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=HTTP_TIMEOUT_SECONDS, context=ssl._create_unverified_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_SECONDS)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in action.http_headers or []:
        headers[header.name] = header.value
    try:
        connection.request("GET", action.path or "/", headers=headers)
        connection.getresponse().read(10 * 1024)
    except TimeoutError:
        return f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except OSError as error:
        return f'Get "{url}": dial tcp {host}:{port}: connect: {go_error_text(error)}'
    except http.client.HTTPException as error:
        return f'Get "{url}": malformed HTTP response: {error!r}'
    finally:
        connection.close()
    return ""
