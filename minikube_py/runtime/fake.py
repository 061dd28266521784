"""An in-memory `Runtime` for unit tests of the node agent: no processes, no root, no sleeping.

It keeps sandboxes and containers in dictionaries, makes up pids, reads time from the injected
clock, and records every call in `calls` so a test can assert what the agent asked for and in
which order. Tests play the kernel's part through a few methods: `exit_container` (a process
exits, optionally OOM-killed), `fail_next_start` (exec fails, bad config), `ignore_sigterm` (the
process only dies at SIGKILL), `kill_sandbox` (pause vanished), `script_exec` and
`script_exec_by_name` (what a probe's or hook's command returns) and `add_image`.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import threading
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

from minikube_py.clock import Clock
from minikube_py.runtime.types import (
    SANDBOX_CONTAINER_NAME,
    ContainerConfig,
    ContainerState,
    ExecResult,
    PulledImage,
    ResolvedImage,
    ResourceUsage,
    ContainerRuntimeError,
    Sandbox,
    SandboxConfig,
)

BUSYBOX = ResolvedImage(
    reference="busybox",
    id="sha256:" + "b" * 64,
    cmd=["sh"],
    env=[("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")],
)


@dataclass
class FakeExecSession:
    """An interactive exec whose output and exit code were decided in advance."""

    result: ExecResult
    stdin: bytearray
    stdin_closed: bool = False
    killed: bool = False
    sizes: list[tuple[int, int]] = field(default_factory=list)

    def write_stdin(self, data: bytes) -> None:
        self.stdin.extend(data)

    def close_stdin(self) -> None:
        self.stdin_closed = True

    def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    def read(self) -> Iterator[tuple[int, bytes]]:
        if self.result.stdout:
            yield 1, self.result.stdout
        if self.result.stderr:
            yield 2, self.result.stderr

    def wait(self) -> int:
        return 137 if self.killed else self.result.exit_code

    def kill(self) -> None:
        self.killed = True


@dataclass
class FakeContainerInput:
    """attach's input into a fake container: what was written, whether it ended."""

    tty: bool
    written: bytearray = field(default_factory=bytearray)
    stdin_closed: bool = False
    closed: bool = False
    sizes: list[tuple[int, int]] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.written.extend(data)

    def close_stdin(self) -> None:
        self.stdin_closed = True

    def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    def close(self) -> None:
        self.closed = True


class FakeRuntime:
    def __init__(self, clock: Clock | None = None, images: list[ResolvedImage] | None = None):
        self.clock = clock or Clock()
        self.calls: list[tuple] = []
        self.images: dict[str, ResolvedImage] = {image.reference: image for image in (images or [BUSYBOX])}
        # What `pull_image` can fetch, by reference, and the errors it gives instead.
        self.registry: dict[str, ResolvedImage] = {}
        self.pull_errors: dict[str, str] = {}
        self.sandboxes: dict[str, Sandbox] = {}
        self.sandbox_configs: dict[str, SandboxConfig] = {}
        self.containers: dict[str, ContainerState] = {}
        self.container_configs: dict[str, ContainerConfig] = {}
        self.removed_containers: list[str] = []
        self.memory_volumes: set[str] = set()  # host paths "mounted" as tmpfs
        self._dead_sandboxes: set[str] = set()
        self._broken_networks: dict[str, str] = {}
        self._start_failures: dict[str, ContainerRuntimeError] = {}
        self._sigterm_ignored: set[str] = set()
        self._exec_scripts: dict[str, Callable[[list[str]], ExecResult] | ExecResult] = {}
        self.port_forward_targets: dict[int, tuple[str, int]] = {}
        self.inputs: list[FakeContainerInput] = []
        self._exec_scripts_by_name: dict[str, Callable[[list[str]], ExecResult] | ExecResult] = {}
        self._pids = itertools.count(1000)
        self._exited: list[ContainerState] = []
        self._exits_changed = threading.Condition()
        self.started = False
        # Cgroup counters tests set: by container id, and the node's.
        self.usage: dict[str, ResourceUsage] = {}
        self.node_resource_usage: ResourceUsage | None = None

    # ---- what tests use to play the kernel's part

    def add_image(self, image: ResolvedImage) -> None:
        self.images[image.reference] = image

    def container_for(self, pod_uid: str, name: str) -> ContainerState | None:
        """The newest container (highest attempt) of that name in that pod."""
        found = [state for state in self.containers.values() if state.sandbox_id == pod_uid and state.name == name]
        return max(found, key=lambda state: state.attempt) if found else None

    def exit_container(self, container_id: str, exit_code: int = 0, oom_killed: bool = False,
                       signal_number: int | None = None) -> ContainerState:
        state = self.containers[container_id]
        if state.status != "running":
            raise ValueError(f"container {container_id} is already {state.status}")
        return self._finish(container_id, exit_code, signal_number, oom_killed)

    def fail_next_start(self, container_name: str, reason: str, message: str) -> None:
        """The next start_container for that container name raises ContainerRuntimeError(reason, message)."""
        self._start_failures[container_name] = ContainerRuntimeError(reason, message)

    def ignore_sigterm(self, container_id: str) -> None:
        """SIGTERM does nothing: stop_container waits the whole grace period (on the clock) and
        SIGKILLs; kill_container(SIGTERM) leaves it running."""
        self._sigterm_ignored.add(container_id)

    def kill_sandbox(self, sandbox_id: str) -> None:
        """The pause process died. As on Linux, the containers (in their own PID namespaces) keep
        running; the exit is reported through `wait_any` as the pod's "POD" container."""
        self._dead_sandboxes.add(sandbox_id)
        with self._exits_changed:
            self._exited.append(ContainerState(
                id=sandbox_id, sandbox_id=sandbox_id, name=SANDBOX_CONTAINER_NAME, attempt=0, status="exited",
                finished_at=self.clock.now()))
            self._exits_changed.notify_all()

    def break_sandbox_network(self, sandbox_id: str, problem: str = "the pod has no eth0") -> None:
        """The sandbox's network is incomplete (a crash cut its creation short)."""
        self._broken_networks[sandbox_id] = problem

    def script_exec(self, container_id: str, result: ExecResult | Callable[[list[str]], ExecResult]) -> None:
        self._exec_scripts[container_id] = result

    def script_exec_by_name(self, container_name: str, result: ExecResult | Callable[[list[str]], ExecResult]) -> None:
        """What exec returns in every container of that name, also those not started yet (a
        postStart hook runs before a test could learn the new container's id)."""
        self._exec_scripts_by_name[container_name] = result

    def call_names(self) -> list[str]:
        return [call[0] for call in self.calls]

    # ---- the Runtime protocol

    def start(self) -> None:
        self.calls.append(("start",))
        self.started = True

    def image_config(self, reference: str) -> ResolvedImage:
        self.calls.append(("image_config", reference))
        image = self.images.get(reference) or next((known for known in self.images.values() if known.id == reference), None)
        if image is None:
            raise ContainerRuntimeError(
                "ErrImageNeverPull", f'Container image "{reference}" is not present with pull policy of Never'
            )
        return image

    def pull_image(self, reference: str, docker_configs: list[tuple[str, bytes]]) -> PulledImage:
        self.calls.append(("pull_image", reference, [where for where, _ in docker_configs]))
        if reference in self.pull_errors:
            raise ContainerRuntimeError("ErrImagePull", self.pull_errors[reference])
        image = self.registry.get(reference)
        if image is None:
            raise ContainerRuntimeError("ErrImagePull", f'failed to pull and unpack image "{reference}": failed to resolve '
                                                        f'reference "{reference}": {reference}: not found')
        self.images[reference] = image
        return PulledImage(image, 0.5, image.size)

    def create_sandbox(self, config: SandboxConfig) -> Sandbox:
        self.calls.append(("create_sandbox", config.pod_uid, config.ip))
        sandbox = Sandbox(
            id=config.pod_uid,
            pod_name=config.pod_name,
            namespace=config.namespace,
            pause_pid=next(self._pids),
            pause_start_time=int(self.clock.monotonic() * 100),
            ip=config.ip,
            host_veth=f"mkfake{len(self.sandboxes):04d}",
            cgroup=f"minikube-py-fake/pod-{config.pod_uid}",
            share_process_namespace=config.share_process_namespace,
        )
        self.sandboxes[sandbox.id] = sandbox
        self.sandbox_configs[sandbox.id] = config
        self._dead_sandboxes.discard(sandbox.id)
        self._broken_networks.pop(sandbox.id, None)
        return sandbox

    def check_sandbox_network(self, sandbox: Sandbox) -> str:
        return self._broken_networks.get(sandbox.id, "")

    def sandbox_alive(self, sandbox: Sandbox) -> bool:
        current = self.sandboxes.get(sandbox.id)
        return current is not None and current.pause_pid == sandbox.pause_pid and sandbox.id not in self._dead_sandboxes

    def mount_memory_volume(self, path: str, size_bytes: int | None = None) -> None:
        """A plain directory stands for the tmpfs; `memory_volumes` says which are "mounted"."""
        self.calls.append(("mount_memory_volume", path, size_bytes))
        os.makedirs(path, exist_ok=True)
        self.memory_volumes.add(path)

    def unmount_memory_volume(self, path: str) -> None:
        self.calls.append(("unmount_memory_volume", path))
        self.memory_volumes.discard(path)

    def remove_sandbox(self, sandbox: Sandbox) -> None:
        self.calls.append(("remove_sandbox", sandbox.id))
        for state in list(self.containers.values()):
            if state.sandbox_id == sandbox.id:
                if state.status == "running":
                    self._finish(state.id, 128 + signal.SIGKILL, signal.SIGKILL, False)
                self.remove_container(state.id)
        self.sandboxes.pop(sandbox.id, None)
        self._dead_sandboxes.discard(sandbox.id)

    def start_container(self, sandbox: Sandbox, config: ContainerConfig) -> ContainerState:
        self.calls.append(("start_container", config.sandbox_id, config.name, config.attempt))
        if not self.sandbox_alive(sandbox):
            raise ContainerRuntimeError("CreateContainerError", f"sandbox {sandbox.id} is not running")
        failure = self._start_failures.pop(config.name, None)
        if failure is not None:
            raise failure
        if config.image not in self.images:
            self.image_config(config.image)
        container_id = f"{config.name}-{config.attempt}-{config.sandbox_id[:8]}"
        state = ContainerState(
            id=container_id,
            sandbox_id=config.sandbox_id,
            name=config.name,
            attempt=config.attempt,
            status="running",
            pid=next(self._pids),
            started_at=self.clock.now(),
            log_path=config.log_path,
            cgroup=f"{sandbox.cgroup}/{container_id}",
        )
        self.containers[container_id] = state
        self.container_configs[container_id] = config
        return replace(state)

    def container_state(self, container_id: str) -> ContainerState:
        state = self.containers.get(container_id)
        if state is None:
            raise ContainerRuntimeError("ContainerStatusUnknown", f"container {container_id} not found")
        return replace(state)

    def wait_any(self, timeout: float) -> list[ContainerState]:
        with self._exits_changed:
            if not self._exited and timeout > 0:
                self._exits_changed.wait(timeout)
            exited, self._exited = self._exited, []
        return exited

    def stop_container(self, container_id: str, grace_seconds: float) -> ContainerState:
        self.calls.append(("stop_container", container_id, grace_seconds))
        state = self.containers[container_id]
        if state.status == "running":
            if container_id in self._sigterm_ignored:
                self.clock.sleep(grace_seconds)
                self._finish(container_id, 128 + signal.SIGKILL, signal.SIGKILL, False)
            else:
                self._finish(container_id, 128 + signal.SIGTERM, signal.SIGTERM, False)
        return replace(self.containers[container_id])

    def kill_container(self, container_id: str, signal_number: int) -> None:
        """A container exits on any signal at once, but on SIGTERM when it ignores SIGTERM."""
        self.calls.append(("kill_container", container_id, signal_number))
        state = self.containers.get(container_id)
        if state is None or state.status != "running":
            raise ContainerRuntimeError("ContainerNotRunning", f"container {container_id} is not running")
        if signal_number == signal.SIGTERM and container_id in self._sigterm_ignored:
            return
        self._finish(container_id, 128 + signal_number, signal_number, False)

    def remove_container(self, container_id: str) -> None:
        self.calls.append(("remove_container", container_id))
        if self.containers.pop(container_id, None) is not None:
            self.removed_containers.append(container_id)

    def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        self.calls.append(("exec_sync", container_id, tuple(argv)))
        state = self.containers.get(container_id)
        if state is None or state.status != "running":
            raise ContainerRuntimeError("ContainerNotRunning", f"container {container_id} is not running")
        script = self._exec_scripts.get(container_id,
                                        self._exec_scripts_by_name.get(state.name, ExecResult(0, b"", b"")))
        return script(argv) if callable(script) else script

    def open_container_input(self, container_id: str) -> FakeContainerInput | None:
        self.calls.append(("open_container_input", container_id))
        config = self.container_configs.get(container_id)
        if config is None or not (config.stdin or config.tty):
            return None
        self.inputs.append(FakeContainerInput(tty=config.tty))
        return self.inputs[-1]

    def close_container_stdin(self, container_id: str) -> None:
        self.calls.append(("close_container_stdin", container_id))

    def connect_in_sandbox(self, sandbox: Sandbox, port: int, timeout: float) -> socket.socket:
        """A connection to `port_forward_targets[port]` (an address the test listens on)."""
        self.calls.append(("connect_in_sandbox", sandbox.id, port))
        target = self.port_forward_targets.get(port)
        if target is None:
            raise ContainerRuntimeError("PortForwardFailed", f"failed to connect to localhost:{port} inside the "
                                        "pod's network namespace: connection refused")
        return socket.create_connection(target, timeout)

    def exec_stream(self, container_id: str, argv: list[str], tty: bool = False) -> FakeExecSession:
        self.calls.append(("exec_stream", container_id, tuple(argv), tty))
        return FakeExecSession(self.exec_sync(container_id, argv, timeout=0), bytearray())

    def list_sandboxes(self) -> list[Sandbox]:
        return [replace(sandbox) for sandbox in self.sandboxes.values()]

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerState]:
        return [replace(state) for state in self.containers.values()
                if sandbox_id is None or state.sandbox_id == sandbox_id]

    def container_usage(self, sandbox: Sandbox, container_id: str) -> ResourceUsage | None:
        return self.usage.get(container_id)

    def node_usage(self) -> ResourceUsage | None:
        return self.node_resource_usage

    def inspect(self, sandbox: Sandbox, container_ids: dict[str, str]) -> dict:
        """The same document shape as LinuxRuntime.inspect, with made-up facts."""
        self.calls.append(("inspect", sandbox.id))
        return {
            "pod": {"ip": sandbox.ip, "hostVeth": sandbox.host_veth, "cgroup": sandbox.cgroup},
            "pause": {"pid": sandbox.pause_pid if self.sandbox_alive(sandbox) else 0},
            "containers": [
                {"name": name, "id": container_id, "pid": self.containers[container_id].pid,
                 "state": self.containers[container_id].status}
                for name, container_id in container_ids.items() if container_id in self.containers
            ],
        }

    def shutdown(self, remove_all: bool) -> None:
        self.calls.append(("shutdown", remove_all))
        if remove_all:
            for sandbox in list(self.sandboxes.values()):
                self.remove_sandbox(sandbox)

    # ---- internals

    def _finish(self, container_id: str, exit_code: int, signal_number: int | None, oom_killed: bool) -> ContainerState:
        state = self.containers[container_id]
        state.status = "exited"
        state.exit_code = exit_code
        state.signal = signal_number
        state.oom_killed = oom_killed
        state.finished_at = self.clock.now()
        state.pid = 0
        with self._exits_changed:
            self._exited.append(replace(state))
            self._exits_changed.notify_all()
        return replace(state)
