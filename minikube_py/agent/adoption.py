"""Re-adoption after a restart of the daemon: take over what the runtime still runs.

The runtime's supervisor outlives the daemon, so on `start` the agent finds sandboxes and
containers it did not make in this process. Each pod still in the API gets its record back from
its stored status plus what the runtime reports (running containers keep running, exits that
happened while nobody watched are reported with their real codes); sandboxes, pod directories and
addresses of pods the API no longer has are removed. A daemon killed in the middle of creating a
sandbox leaves one whose network is incomplete (no veth, no eth0, no address): each adopted
sandbox's network is checked, and a broken one is replaced by the first sync as kubelet does
(SandboxChanged, every container restarted and counted).

`Adoption` is a part of `NodeAgent` (agent.py), split out by concern.
"""

from __future__ import annotations

import logging

from minikube_py.agent import podfiles
from minikube_py.agent.pod import Lifecycle
from minikube_py.agent.status import CONTAINER_ID_PREFIX, Termination
from minikube_py.agent.termination import TERMINAL_PHASES
from minikube_py.api.core import Pod
from minikube_py.api.times import parse_time
from minikube_py.runtime.types import ContainerState, Sandbox

log = logging.getLogger(__name__)


class Adoption:
    """The re-adoption step of `NodeAgent`, run once before its workers start."""

    def adopt(self) -> None:
        """Adopt the sandboxes of pods still in the API, remove the others, release addresses nobody
        holds, and queue every pod of this node."""
        pods = {pod.metadata.uid: pod for pod in self.pods.list() if pod.spec.node_name == self.node_name}
        sandboxes = {sandbox.id: sandbox for sandbox in self.runtime.list_sandboxes()}
        instances: dict[tuple[str, str], ContainerState] = {}
        for state in self.runtime.list_containers():
            key = (state.sandbox_id, state.name)
            if key not in instances or state.attempt > instances[key].attempt:
                instances[key] = state
        for uid, sandbox in sandboxes.items():
            if uid not in pods:
                log.info("removing sandbox %s of pod %s/%s, which is no longer in the API", uid, sandbox.namespace, sandbox.pod_name)
                self._discard_sandbox(uid, sandbox)
        for uid in podfiles.pod_uids(self.config.home):
            if uid not in pods:
                self.volumes.tear_down_directory(podfiles.pod_dir(self.config.home, uid))
                podfiles.remove_pod_files(self.config.home, uid)
        for owner in set(self.ipam.allocations().values()) - set(pods):
            self.ipam.release(owner)
        for uid, pod in pods.items():
            self._adopt_pod(pod, sandboxes.get(uid), instances)
            self._on_pod(pod)

    def _adopt_pod(self, pod: Pod, sandbox: Sandbox | None, instances: dict[tuple[str, str], ContainerState]) -> None:
        """Rebuild a pod's record from its stored status and what the runtime still has."""
        record = self._new_record(pod)
        status = pod.status
        if status.start_time:
            record.start_time = parse_time(status.start_time)
        record.terminal_phase = status.phase if status.phase in TERMINAL_PHASES else ""
        record.reason, record.message = status.reason or "", status.message or ""
        stored = {container_status.name: container_status
                  for container_status in (status.init_container_statuses or []) + (status.container_statuses or [])}
        now = self.clock.now()
        for name, container_record in record.containers.items():
            previous = stored.get(name)
            if previous is not None:
                container_record.restart_count = previous.restart_count
                container_record.image_id = previous.image_id or ""
                if previous.last_state is not None and previous.last_state.terminated is not None:
                    container_record.last_state = Termination.from_status(previous.last_state.terminated)
                if record.terminal_phase and previous.state is not None and previous.state.terminated is not None:
                    container_record.set_terminated(Termination.from_status(previous.state.terminated))
            state = instances.get((record.uid, name))
            if record.terminal_phase:
                continue
            if state is not None:
                container_record.restart_count = max(container_record.restart_count, state.attempt)
                container_record.container_id = state.id
                if state.status == "running":
                    container_record.set_running(state)
                else:
                    # Exited while nobody watched: report its real exit, then restart per policy.
                    container_record.set_terminated(self._with_termination_message(record, state, Termination.from_state(state)))
            elif sandbox is None and previous is not None and previous.container_id:
                # It ran, but its sandbox is gone without a trace (the host rebooted, or `stop`).
                container_record.container_id = previous.container_id.removeprefix(CONTAINER_ID_PREFIX)
                stored_exit = previous.state.terminated if previous.state is not None else None
                if container_record.init_container and stored_exit is not None:
                    # A completed (or failed) init container keeps its real exit; it runs again anyway.
                    container_record.set_terminated(Termination.from_status(stored_exit))
                else:
                    container_record.set_terminated(Termination.unknown("", now, now))
        if record.terminal_phase:
            record.move(Lifecycle.COMPLETED)
            self._discard_sandbox(record.uid, sandbox)
        elif sandbox is not None:
            # A sandbox whose pause died, or whose network a crash left incomplete, is replaced by
            # the first sync (_ensure_sandbox).
            record.sandbox, record.ip = sandbox, sandbox.ip
            if self.runtime.sandbox_alive(sandbox):
                record.sandbox_problem = self.runtime.check_sandbox_network(sandbox)
            sidecars = [container for container in pod.spec.init_containers or [] if container.restart_policy == "Always"]
            for container in [*sidecars, *pod.spec.containers]:
                running = record.containers[container.name].running
                if running is not None:
                    self._start_probes(record, container, running)
        else:
            record.mark_rerun_after_sandbox_loss()
