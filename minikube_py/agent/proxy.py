"""The NodeProxy the API server forwards pod logs, exec, attach, port-forward and inspect to.

Reads the agent's pod table (which container instance is the current one, its attempt, the
sandbox) and answers from the runtime and the pod's log files, with kubelet's messages for a
container that has not started or a previous instance that does not exist.
"""

from __future__ import annotations

import os
import threading
from typing import Iterator

from minikube_py.agent import containers as container_configs
from minikube_py.agent import logs as container_logs
from minikube_py.agent import podfiles
from minikube_py.agent.attach import AttachSession
from minikube_py.agent.pod import PodRecord, PodTable
from minikube_py.agent.status import ContainerRecord
from minikube_py.api import errors
from minikube_py.runtime.types import Runtime, ContainerRuntimeError


class NodeProxy:
    def __init__(self, table: PodTable, runtime: Runtime, home: str, node_name: str, stopping: threading.Event):
        self.table = table
        self.runtime = runtime
        self.home = home
        self.node_name = node_name
        self._stopping = stopping

    def _record_for(self, namespace: str, name: str) -> PodRecord:
        record = self.table.by_name(namespace, name)
        if record is None:
            raise errors.NotFound(f'pods "{name}" not found on node {self.node_name}')
        return record

    def _container_record(self, record: PodRecord, container: str | None) -> ContainerRecord:
        names = [c.name for c in record.pod.spec.containers]
        if container is None:
            if len(names) != 1:
                init_names = [c.name for c in record.pod.spec.init_containers or []]
                init_choice = f" or one of the init containers: [{' '.join(init_names)}]" if init_names else ""
                raise errors.BadRequest(f"a container name must be specified for pod {record.name}, "
                                        f"choose one of: [{' '.join(names)}]{init_choice}")
            container = names[0]
        if container not in record.containers:
            raise errors.BadRequest(f"container {container} is not valid for pod {record.name}")
        return record.containers[container]

    def logs(self, namespace, name, container=None, follow=False, tail_lines=None, timestamps=False,
             previous=False) -> Iterator[bytes]:
        record = self._record_for(namespace, name)
        container_record = self._container_record(record, container)
        attempt = container_record.restart_count - (1 if previous else 0)
        started = container_record.container_id or container_record.terminated is not None
        if previous and attempt < 0 or previous and container_record.last_state is None:
            raise errors.BadRequest(
                f'previous terminated container "{container_record.name}" in pod "{record.name}" not found')
        if not previous and not started:
            raise errors.BadRequest(f'container "{container_record.name}" in pod "{record.name}" is waiting to start: '
                                    f"{container_record.waiting_reason or 'ContainerCreating'}")
        path = container_configs.log_path(podfiles.pod_dir(self.home, record.uid), container_record.name, attempt)

        def still_running() -> bool:
            running = container_record.running
            if previous or running is None or running.attempt != attempt or self._stopping.is_set():
                return False
            try:
                return self.runtime.container_state(running.id).status == "running"
            except ContainerRuntimeError:
                return False

        return container_logs.read_log(path, tail_lines, timestamps, follow, still_running)

    def exec(self, namespace, name, container, command, tty=False):
        record = self._record_for(namespace, name)
        container_record = self._container_record(record, container)
        if container_record.running is None:
            raise errors.BadRequest(f"container {container_record.name} is not running in pod {record.name}: "
                                    "exec needs a running container")
        return self.runtime.exec_stream(container_record.running.id, list(command), tty)

    def attach(self, namespace, name, container, stdin=False, tty=False) -> AttachSession:
        record = self._record_for(namespace, name)
        container_record = self._container_record(record, container)
        running = container_record.running
        if running is None:
            raise errors.BadRequest(f"container {container_record.name} is not running in pod {record.name}: "
                                    "attach needs a running container")
        spec = next((c for c in [*record.pod.spec.containers, *(record.pod.spec.init_containers or []),
                                 *(record.pod.spec.ephemeral_containers or [])]
                     if c.name == container_record.name), None)
        container_input = None
        if stdin:
            try:
                container_input = self.runtime.open_container_input(running.id)
            except ContainerRuntimeError as error:
                raise errors.BadRequest(f"container {container_record.name} in pod {record.name}: {error.message}") from None
        path = container_configs.log_path(podfiles.pod_dir(self.home, record.uid), container_record.name, running.attempt)
        # Where the output starts: measured now, before any input can reach the container.
        start = os.path.getsize(path) if os.path.exists(path) else 0

        def output(attached) -> Iterator[bytes]:
            def still_running() -> bool:
                if not attached() or self._stopping.is_set():
                    return False
                try:
                    return self.runtime.container_state(running.id).status == "running"
                except ContainerRuntimeError:
                    return False
            return container_logs.read_log(path, tail_lines=0, follow=True, still_running=still_running,
                                           follow_from=start)

        stdin_once = bool(stdin and spec is not None and spec.stdin_once)

        def detached() -> None:
            if stdin_once:
                try:
                    self.runtime.close_container_stdin(running.id)
                except ContainerRuntimeError:
                    pass  # the container is gone: its stdin with it

        return AttachSession(output, container_input, detached)

    def port_forward(self, namespace, name, port: int, timeout: float = 5.0):
        """A socket connected to localhost:port inside the pod's network namespace."""
        record = self._record_for(namespace, name)
        if record.sandbox is None:
            raise errors.BadRequest(f"pod {name} has no sandbox running (phase {record.terminal_phase or 'Pending'}): "
                                    "port-forward needs a running pod")
        try:
            return self.runtime.connect_in_sandbox(record.sandbox, port, timeout)
        except ContainerRuntimeError as error:
            raise errors.ApiError(f"error forwarding port {port} to pod {name}, uid {record.uid}: {error.message}") from None

    def inspect(self, namespace, name) -> dict:
        record = self._record_for(namespace, name)
        if record.sandbox is None:
            raise errors.BadRequest(f"pod {name} has no sandbox running (phase {record.terminal_phase or 'Pending'})")
        container_ids = {name: container_record.running.id for name, container_record in record.containers.items()
                         if container_record.running is not None}
        result = self.runtime.inspect(record.sandbox, container_ids)
        identity = {"name": record.name, "namespace": record.namespace, "uid": record.uid, "node": self.node_name,
                    "ip": record.ip, "hostVeth": record.sandbox.host_veth}
        result["pod"] = {**identity, **result.get("pod", {})}
        return result
