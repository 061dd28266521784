"""Running a pod: one level-triggered step of an active pod, and its status out.

Each step re-reads the runtime's view of the pod's containers and moves the pod on: sandbox
(created, or replaced when its pause died), init containers (one at a time, in order, each to
completion), app containers (start, restart after back-off, give up per restartPolicy), probe
results (started, ready, a liveness or startup kill), then the status, written only when it
changed. The step returns the seconds after which the pod needs another look (a back-off or a
stop deadline); exits and probe results wake it earlier through the work queue.

`PodSync` is a part of `NodeAgent` (agent.py), split out by concern; it uses the agent's
runtime, clock, recorder, probes, back-off, ipam, client and config.
"""

from __future__ import annotations

import hashlib
import logging

from minikube_py.agent import containers as container_configs
from minikube_py.agent import podfiles
from minikube_py.agent.backoff import format_duration
from minikube_py.agent.containers import container_field_path
from minikube_py.agent.hooks import POST_START
from minikube_py.agent.pod import SANDBOX, Lifecycle, PodRecord
from minikube_py.agent.probes import FAILURE, LIVENESS, READINESS, STARTUP, SUCCESS, ProbeTarget, ProbeWorker
from minikube_py.agent.status import (
    START_ERROR_EXIT_CODE,
    ContainerRecord,
    Termination,
    any_app_container_started,
    pod_conditions,
    pod_phase,
)
from minikube_py.agent.termination import (
    SMALLEST_WAIT_SECONDS,
    TERMINAL_PHASES,
    prepare_termination_log,
    termination_log_path,
)
from minikube_py.agent.volumes import FAILED_MOUNT, VolumeSetupError
from minikube_py.api import errors
from minikube_py.api.times import format_time
from minikube_py.client.events import NORMAL, WARNING
from minikube_py.runtime.types import CgroupLimits, ContainerRuntimeError, ContainerState, Mount, SandboxConfig

log = logging.getLogger(__name__)

# Reasons for which the container never ran: retried on the start back-off, no restart counted.
CREATE_FAILURES = ("ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError")
# The key of volume setup failures in PodRecord.failures (its retry back-off).
VOLUMES = "<volumes>"  # not a container name (DNS labels have no angle brackets)
# kubelet's activeDeadlineHandler: the pod's status reason and message, and a Normal event.
DEADLINE_EXCEEDED = "DeadlineExceeded"
DEADLINE_EXCEEDED_MESSAGE = "Pod was active on the node longer than the specified deadline"
# Status writes are JSON patches that first test the pod's uid, so a status never lands on a
# newer pod of the same name (kubelet's status manager checks the uid the same way).
JSON_PATCH = "application/json-patch+json"


def _spec_hash(container) -> str:
    return hashlib.sha256(container.model_dump_json().encode()).hexdigest()[:16]


def _named_ports(container) -> dict[str, int]:
    return {port.name: port.container_port for port in container.ports or [] if port.name}


def _should_restart(restart_policy: str, exit_code: int) -> bool:
    return restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0)


class PodSync:
    """The steps of `NodeAgent` for pods that run."""

    def _sync_running_pod(self, record: PodRecord) -> float | None:
        pod = record.pod
        if record.start_time is None:
            record.start_time = self.clock.now()
        for container_record in record.containers.values():
            self._observe_container(record, container_record)
        wake_after: list[float] = []
        for container in self._all_containers(record):
            hook_wait = self._step_post_start(record, container, record.containers[container.name])
            if hook_wait is not None:
                wake_after.append(hook_wait)
        _, stop_wait = self._advance_stops(record)  # liveness and startup kills under way
        if stop_wait is not None:
            wake_after.append(stop_wait)
        deadline_wait = self._check_active_deadline(record)
        if record.reason == DEADLINE_EXCEEDED:
            return self._stop_for_deadline(record)
        if deadline_wait is not None:
            wake_after.append(deadline_wait)
        volumes_ready, volume_wait = self._set_up_volumes(record)
        if not volumes_ready:
            return volume_wait
        if volume_wait is not None:
            wake_after.append(volume_wait)
        sandbox_wait = self._ensure_sandbox(record)
        if sandbox_wait is not None:
            return sandbox_wait
        initialized, delay = self._step_init_containers(record)
        if delay is not None:
            wake_after.append(delay)
        if initialized:
            app_containers_done = self._app_containers_done(record)
            if not app_containers_done:
                sidecars = [container for container in pod.spec.init_containers or []
                            if record.containers[container.name].sidecar]
                for container in [*sidecars, *pod.spec.containers]:
                    delay = self._step_container(record, container)
                    if delay is not None:
                        wake_after.append(delay)
                app_containers_done = self._app_containers_done(record)
            if app_containers_done:
                delay = self._stop_sidecars(record)
                if delay is not None:
                    wake_after.append(delay)
            for ephemeral in pod.spec.ephemeral_containers or []:
                delay = self._step_ephemeral_container(record, ephemeral)
                if delay is not None:
                    wake_after.append(delay)
        phase = pod_phase(record.app_records, pod.spec.restart_policy, init_records=record.init_records)
        if phase in TERMINAL_PHASES:
            record.terminal_phase = phase
            record.move(Lifecycle.COMPLETED)
            self._release_pod_resources(record)
            return None
        return max(min(wake_after), SMALLEST_WAIT_SECONDS) if wake_after else None

    def _check_active_deadline(self, record: PodRecord) -> float | None:
        """kubelet's activeDeadlineHandler: a pod active on the node longer than
        spec.activeDeadlineSeconds (from status.startTime) fails with DeadlineExceeded. Returns
        the seconds left until the deadline (None: no deadline, or passed)."""
        deadline = record.pod.spec.active_deadline_seconds
        if deadline is None or record.reason == DEADLINE_EXCEEDED:
            return None
        remaining = record.start_time + deadline - self.clock.now()
        if remaining > 0:
            return remaining
        record.reason, record.message = DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE
        record.terminal_phase = "Failed"
        self.recorder.event(record.pod, NORMAL, DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE)
        return None

    def _stop_for_deadline(self, record: PodRecord) -> float | None:
        """The pod failed its active deadline: stop every running container with the pod's grace
        (nothing is restarted), then release the pod as a completed one; the object stays, Failed."""
        stop_wait = self._stop_gracefully(record, record.running_records())
        if stop_wait is not None:
            return stop_wait
        record.move(Lifecycle.COMPLETED)
        self._release_pod_resources(record)
        return None

    def _step_init_containers(self, record: PodRecord) -> tuple[bool, float | None]:
        """Run the init containers one at a time, in order: a regular one to completion, a sidecar
        (restartPolicy Always) until it has started (its postStart hook returned and its startup
        probe passed), then it keeps running. Returns whether the pod is initialized, and the
        seconds until the current one needs another look (back-off, a hook's sleep)."""
        if not record.initialized and not record.rerun_init and any_app_container_started(record.app_records):
            record.initialized = True  # kubelet's HasAnyRegularContainerStarted (re-adoption)
        if record.initialized:
            return True, None
        for container in record.pod.spec.init_containers or []:
            container_record = record.containers[container.name]
            if container_record.sidecar:
                delay = None
                if container_record.running is None:
                    delay = self._step_container(record, container)
                if container_record.running is None or not container_record.started:
                    return False, delay  # its start, probe result or exit wakes the pod
                continue
            if container_record.completed and container.name not in record.rerun_init:
                continue
            if container_record.running is not None:
                return False, None  # its exit wakes the pod
            # Failed under restartPolicy Never, it stays terminated and the pod's phase is Failed.
            return False, self._step_container(record, container)
        record.initialized = True
        return True, None

    def _app_containers_done(self, record: PodRecord) -> bool:
        """The app containers reached a terminal phase (none runs, none will restart); sidecars do
        not keep a pod from completing."""
        phase = pod_phase(record.app_records, record.pod.spec.restart_policy, init_records=record.regular_init_records)
        return phase in TERMINAL_PHASES

    def _stop_sidecars(self, record: PodRecord) -> float | None:
        """The app containers are done: stop the running sidecars with the pod's grace period (the
        termination steps stop them in reverse order, termination.py). Returns the next wait."""
        return self._stop_gracefully(record, [container_record for container_record in record.sidecar_records
                                              if container_record.running is not None])

    def _stop_gracefully(self, record: PodRecord, container_records: list[ContainerRecord]) -> float | None:
        """Stop these running containers with the pod's grace period (preStop, SIGTERM, SIGKILL),
        with kubelet's Killing events; returns the seconds until the next step, None when done."""
        now = self.clock.monotonic()
        for container_record in container_records:
            record.request_stop(container_record, record.pod.spec.termination_grace_period_seconds, now)
        begun, wait = self._advance_stops(record)
        for container_record in begun:
            self.recorder.event(record.pod, NORMAL, "Killing", f"Stopping container {container_record.name}",
                                container_field_path(record.pod, container_record.name))
        return wait

    def _observe_container(self, record: PodRecord, container_record: ContainerRecord) -> None:
        """Bring a running record up to date with the runtime: exited? ready? started? to be killed?"""
        running = container_record.running
        if running is None:
            return
        try:
            state = self.runtime.container_state(running.id)
        except ContainerRuntimeError:
            self._record_exit(record, container_record,
                              Termination.unknown(running.id, running.started_at, self.clock.now()))
            return
        if state.status != "running":
            self._record_exit(record, container_record,
                              self._with_termination_message(record, state, Termination.from_state(state)))
        elif not container_record.init_container and not record.terminating:
            self._apply_probe_results(record, container_record, state.id)

    def _apply_probe_results(self, record: PodRecord, container_record: ContainerRecord, container_id: str) -> None:
        """started: the startup probe passed (or there is none); ready: started and readiness passes.
        A failed liveness or startup probe asks for the container to be stopped (then restarted).
        Nothing counts while the postStart hook runs: its probes start when it returns."""
        if container_record.post_start is not None:
            container_record.started = container_record.ready = False
            return
        results = self.probes.results(container_id)
        container_record.started = results.get(STARTUP, SUCCESS) == SUCCESS
        container_record.ready = container_record.started and results.get(READINESS, SUCCESS) == SUCCESS
        for kind in (LIVENESS, STARTUP):
            if results.get(kind) == FAILURE:
                self.probes.remove_container(container_id)
                record.request_stop(container_record, self._probe_grace(record, container_record.name, kind),
                                    self.clock.monotonic())
                return

    def _probe_grace(self, record: PodRecord, name: str, kind: str) -> float:
        container = record.container_spec(name)
        grace = getattr(container, f"{kind}_probe").termination_grace_period_seconds
        return record.pod.spec.termination_grace_period_seconds if grace is None else grace

    def _record_exit(self, record: PodRecord, container_record: ContainerRecord, termination: Termination) -> None:
        self.probes.remove_container(termination.container_id)
        if termination.reason == "OOMKilled":
            self.recorder.event(record.pod, WARNING, "OOMKilled",
                                f"Container {container_record.name} was killed: out of memory (cgroup memory limit)",
                                container_field_path(record.pod, container_record.name))
        if container_record.stop is not None and record.pod.spec.share_process_namespace and termination.container_id:
            # What the container left behind in a shared PID namespace outlives its PID 1.
            try:
                self.runtime.stop_container(termination.container_id, 0)
            except ContainerRuntimeError as error:
                log.info("pod %s/%s: sweeping %s: %s", record.namespace, record.name, container_record.name, error.message)
        container_record.set_terminated(termination)

    def _set_up_volumes(self, record: PodRecord) -> tuple[bool, float | None]:
        """Write the pod's configMap, secret, downwardAPI and projected volumes (again: a no-op
        unless their data changed). Returns whether the pod may go on, and the seconds until it
        needs another look (a retry, or a projected token to renew). Before the first container
        a failure holds the pod in ContainerCreating, as kubelet's volume manager does; a running
        pod keeps its containers and its volumes' last content."""
        try:
            wait = self.volumes.set_up(record.pod, podfiles.pod_dir(self.config.home, record.uid))
        except VolumeSetupError as error:
            self.recorder.event(record.pod, WARNING, FAILED_MOUNT, error.event_message)
            delay = self._failure_delay(record, VOLUMES)
            return record.sandbox is not None, delay
        record.failures.pop(VOLUMES, None)
        return True, wait

    def _ensure_sandbox(self, record: PodRecord) -> float | None:
        """A live sandbox (None), or the seconds until the next try to make one."""
        if record.sandbox is not None and not record.sandbox_problem and self.runtime.sandbox_alive(record.sandbox):
            return None
        if record.sandbox is not None:
            # The pause process is gone, and with it the pod's namespaces, or its network is broken:
            # start over in a new sandbox; every container that ran is restarted (restartCount + 1)
            # without back-off.
            problem = record.sandbox_problem or "its pause process is gone"
            log.warning("pod %s/%s: sandbox %s is broken (%s); creating a new one",
                        record.namespace, record.name, record.sandbox.id, problem)
            self.recorder.event(record.pod, NORMAL, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            for container_record in record.running_records() if record.sandbox_problem else []:
                # Still running in the broken sandbox: killed, so the restart shows their real end.
                try:
                    state = self.runtime.stop_container(container_record.running.id, 0)
                    self._record_exit(record, container_record, Termination.from_state(state))
                except ContainerRuntimeError as error:
                    log.info("pod %s/%s: stopping %s: %s", record.namespace, record.name, container_record.name,
                             error.message)
            self._remove_sandbox(record)
            record.sandbox_problem = ""
            record.mark_rerun_after_sandbox_loss()
        pod = record.pod
        try:
            record.ip = self.ipam.allocate(record.uid)
            directory = podfiles.write_pod_files(self.config.home, pod, record.ip, self.config.host_resolv_conf,
                                                 self.config.cluster_dns)
            record.sandbox = self.runtime.create_sandbox(SandboxConfig(
                pod_uid=record.uid,
                pod_name=record.name,
                namespace=record.namespace,
                hostname=podfiles.pod_hostname(pod),
                ip=record.ip,
                prefix_len=self.config.prefix_len,
                gateway=self.config.gateway,
                share_process_namespace=bool(pod.spec.share_process_namespace),
                limits=CgroupLimits(pids_max=self.config.pods_max_pids),
            ))
            log.debug("pod %s/%s: sandbox up with %s in %s", record.namespace, record.name, record.ip, directory)
            record.failures.pop(SANDBOX, None)
            return None
        except ContainerRuntimeError as error:
            self.recorder.event(pod, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {error.message}")
        except Exception as error:
            self.recorder.event(pod, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {error}")
        record.sandbox = None
        return self._failure_delay(record, SANDBOX)

    def _step_container(self, record: PodRecord, container) -> float | None:
        """Start, restart or leave one container; returns seconds until it needs another look."""
        container_record = record.containers[container.name]
        if container_record.running is not None:
            return None
        exited = container_record.terminated
        if exited is None and container_record.last_state is not None and container_record.waiting_reason:
            # Waiting to restart: the termination it waits on is the one shown as lastState.
            exited = container_record.last_state
        if exited is not None:
            if not _should_restart(record.restart_policy(container_record), exited.exit_code):
                container_record.set_terminated(exited)
                return None
            if container.name in record.restart_now:
                record.restart_now.discard(container.name)
            else:
                key = (record.uid, container.name, _spec_hash(container))
                exit_id = exited.container_id or f"start-{container_record.restart_count}"
                delay = self.backoff.restart_delay(key, exit_id, exited.started_at, exited.finished_at)
                remaining = exited.finished_at + delay - self.clock.now()
                if remaining > 0:
                    self._wait_back_off(record, container_record, exited, exit_id, delay)
                    return remaining
        return self._start_container(record, container, container_record, restart=exited is not None)

    def _step_ephemeral_container(self, record: PodRecord, container) -> float | None:
        """An ephemeral container (kubectl debug) starts once, when asked, and is never restarted;
        it counts for neither the pod's phase nor its readiness."""
        container_record = record.containers.get(container.name)
        if container_record is None:
            container_record = record.containers[container.name] = ContainerRecord(container.name, container.image)
        if container_record.running is not None or container_record.terminated is not None:
            return None
        return self._start_container(record, container, container_record, restart=False)

    def _wait_back_off(self, record: PodRecord, container_record: ContainerRecord, exited: Termination,
                       exit_id: str, delay: float) -> None:
        container_record.last_state = exited
        if exited.reason == "StartError":
            container_record.set_waiting("RunContainerError", exited.message)
        else:
            container_record.set_waiting(
                "CrashLoopBackOff",
                f"back-off {format_duration(delay)} restarting failed container={container_record.name} pod={record.display}",
            )
        if record.backoff_reported.get(container_record.name) != exit_id:
            record.backoff_reported[container_record.name] = exit_id
            self.recorder.event(record.pod, WARNING, "BackOff",
                                f"Back-off restarting failed container {container_record.name} in pod {record.display}",
                                container_field_path(record.pod, container_record.name))

    def _start_container(self, record: PodRecord, container, container_record: ContainerRecord,
                         restart: bool) -> float | None:
        pod = record.pod
        if restart:
            container_record.last_state = container_record.terminated or container_record.last_state
        attempt = container_record.restart_count + 1 if restart else container_record.restart_count
        try:
            ensured = self.image_pulls.ensure(pod, container, container_record)
            if ensured.image is None:
                return ensured.retry_after  # pulling (the pull's end wakes the pod) or backing off
            image = ensured.image
            container_record.image_id = image.id
            config = container_configs.build_container_config(
                pod, container, image, attempt, podfiles.pod_dir(self.config.home, record.uid), record.ip, self.host_ip,
                seccomp_profiles_dir=podfiles.seccomp_profiles_dir(self.config.home),
                seccomp_default=self.config.seccomp_default, sources=self.env_sources)
        except ContainerRuntimeError as error:
            return self._creation_failed(record, container_record, error)
        if container.termination_message_path:
            log_file = termination_log_path(self.config.home, record.uid, container.name, attempt)
            config.mounts.append(Mount(destination=container.termination_message_path,
                                       source=prepare_termination_log(log_file)))
        target = record.containers.get(getattr(container, "target_container_name", None) or "")
        if target is not None and target.running is not None:
            config.target_container_id = target.running.id
        try:
            state = self.runtime.start_container(record.sandbox, config)
        except ContainerRuntimeError as error:
            if error.reason in CREATE_FAILURES:
                return self._creation_failed(record, container_record, error)
            # It was created but could not run (exec failed): a StartError termination, exit 128,
            # which counts as a run of the container for restarts and back-off.
            self.recorder.event(pod, WARNING, "Failed", f"Error: {error.message}",
                                container_field_path(pod, container_record.name))
            now = self.clock.now()
            container_record.restart_count = attempt
            container_record.set_terminated(
                Termination("", START_ERROR_EXIT_CODE, "StartError", now, now, message=error.message))
            if container.name in [c.name for c in pod.spec.ephemeral_containers or []]:
                return None  # an ephemeral container is not restarted
            return self._step_container(record, container)
        record.failures.pop(container.name, None)
        record.rerun_init.discard(container.name)
        container_record.restart_count = attempt
        container_record.set_running(state)
        field_path = container_field_path(pod, container.name)
        self.recorder.event(pod, NORMAL, "Created", f"Created container {container.name}", field_path)
        self.recorder.event(pod, NORMAL, "Started", f"Started container {container.name}", field_path)
        hook = container.lifecycle.post_start if container.lifecycle is not None else None
        if hook is not None:
            target = ProbeTarget(state.id, record.ip, _named_ports(container))
            container_record.post_start = self.hooks.run(POST_START, record.uid, record.display, container, hook, target)
            return self._step_post_start(record, container, container_record)
        self._container_started(record, container, container_record)
        return None

    def _container_started(self, record: PodRecord, container, container_record: ContainerRecord) -> None:
        """The container runs and its postStart hook (if any) returned: its probes begin."""
        if not container_record.init_container:  # init containers have no probes (validation)
            self._start_probes(record, container, container_record.running)
            self._apply_probe_results(record, container_record, container_record.running.id)

    def _step_post_start(self, record: PodRecord, container, container_record: ContainerRecord) -> float | None:
        """kubelet's startContainer after the start: the container counts as started only once its
        postStart hook returned; a failed hook kills it (restarted by its restart policy) with a
        FailedPostStartHook event. Returns the seconds until a sleep hook ends."""
        run = container_record.post_start
        if run is None or container_record.running is None or container_record.stop is not None:
            return None  # no hook, or the container is being stopped (its hook failed, or the pod ends)
        if not self.hooks.finished(run):
            return self.hooks.remaining(run)
        if not run.failed:
            container_record.post_start = None
            self._container_started(record, container, container_record)
            return None
        log.info("pod %s/%s: %s", record.namespace, record.name, run.error)
        # kubelet leaves the hook's message out of the event (it may hold secrets); the
        # container's waiting state (PostStartHookError) shows it.
        field_path = container_field_path(record.pod, container_record.name)
        self.recorder.event(record.pod, WARNING, "FailedPostStartHook", "PostStartHook failed", field_path)
        self.recorder.event(record.pod, NORMAL, "Killing", "FailedPostStartHook", field_path)
        record.request_stop(container_record, record.pod.spec.termination_grace_period_seconds, self.clock.monotonic())
        self.queue.add(record.uid)
        return SMALLEST_WAIT_SECONDS

    @staticmethod
    def _all_containers(record: PodRecord) -> list:
        return [*(record.pod.spec.init_containers or []), *record.pod.spec.containers]

    def _creation_failed(self, record: PodRecord, container_record: ContainerRecord, error: ContainerRuntimeError) -> float:
        """The container could not be made (image missing, bad config): wait with the reason, retry later."""
        delay = self._failure_delay(record, container_record.name)
        # A container that ran has its termination in last_state already (_start_container).
        container_record.set_waiting(error.reason, error.message)
        field_path = container_field_path(record.pod, container_record.name)
        if error.reason == "ErrImageNeverPull":
            self.recorder.event(record.pod, WARNING, "ErrImageNeverPull", error.message, field_path)
        self.recorder.event(record.pod, WARNING, "Failed", f"Error: {error.reason}" if error.reason == "ErrImageNeverPull"
                            else f"Error: {error.message}", field_path)
        return delay

    def _failure_delay(self, record: PodRecord, what: str) -> float:
        """Retry delay after the n-th consecutive failure to create `what`: the crash-loop curve."""
        failures = record.failures.get(what, 0) + 1
        record.failures[what] = failures
        return min(self.config.backoff_initial * 2 ** (failures - 1), self.config.backoff_max)

    def _start_probes(self, record: PodRecord, container, state: ContainerState) -> None:
        # Probes count time on the agent's monotonic clock from the container's start.
        started = self.clock.monotonic() - max(0.0, self.clock.now() - state.started_at)
        self.probes.add_container(record.uid, container, ProbeTarget(state.id, record.ip, _named_ports(container)), started)

    def _on_probe_result(self, worker: ProbeWorker, success: bool, detail: str, changed: bool) -> None:
        """From the probe pool: events now; what the result means for the pod is the next sync's."""
        record = self.table.get(worker.pod_uid)
        if record is None or record.terminating:
            return
        kind = worker.spec.kind
        field_path = container_field_path(record.pod, worker.container_name)
        if not success:
            self.recorder.event(record.pod, WARNING, "Unhealthy", f"{kind.capitalize()} probe failed: {detail}",
                                field_path)
        if changed and kind in (LIVENESS, STARTUP) and worker.state.result == FAILURE:
            self.recorder.event(record.pod, NORMAL, "Killing",
                                f"Container {worker.container_name} failed {kind} probe, will be restarted", field_path)
        if changed:
            self.queue.add(worker.pod_uid)

    # ---- status out ------------------------------------------------------------------------

    def compute_status(self, record: PodRecord) -> dict:
        pod = record.pod
        records, init_records = record.app_records, record.init_records
        phase = record.terminal_phase or pod_phase(records, pod.spec.restart_policy, init_records=init_records)
        if record.last_status is not None:
            previous = record.last_status.get("conditions", [])
        else:
            previous = [condition.to_dict() for condition in pod.status.conditions or []]
        sandbox_ready = record.sandbox is not None and not record.terminal_phase
        status = {
            "phase": phase,
            "conditions": pod_conditions(records, phase, sandbox_ready, previous, self.clock.now(), init_records),
            "hostIP": self.host_ip,
        }
        if record.ip:
            status["podIP"] = record.ip
            status["podIPs"] = [{"ip": record.ip}]
        if record.start_time is not None:
            status["startTime"] = format_time(record.start_time)
        if record.reason:
            status["reason"], status["message"] = record.reason, record.message
        if init_records:
            status["initContainerStatuses"] = [container_record.to_dict() for container_record in init_records]
        status["containerStatuses"] = [container_record.to_dict() for container_record in records]
        ephemeral = [record.containers[c.name].to_dict() for c in pod.spec.ephemeral_containers or []
                     if c.name in record.containers]
        if ephemeral:
            status["ephemeralContainerStatuses"] = ephemeral
        return status

    @staticmethod
    def _ready_overwritten(record: PodRecord, status: dict) -> bool:
        """Whether the API's copy of the pod has another Ready than this agent last wrote: the node
        lifecycle controller marks a lost node's pods not ready, and a node that comes back says
        again what it sees (as kubelet's status manager reconciles with the API's copy)."""
        def ready(conditions) -> str | None:
            return next((c.get("status") for c in conditions or [] if c.get("type") == "Ready"), None)

        api_conditions = [c.to_dict() for c in record.pod.status.conditions or []] if record.pod.status else []
        return ready(status.get("conditions")) != ready(api_conditions)

    def _write_status(self, record: PodRecord) -> None:
        status = self.compute_status(record)
        if status == record.last_status and not self._ready_overwritten(record, status):
            return
        operations = [{"op": "test", "path": "/metadata/uid", "value": record.uid}]
        operations += [{"op": "add", "path": f"/status/{key}", "value": value} for key, value in status.items()]
        try:
            self.client.raw.patch_status("pods", record.namespace, record.name, operations, JSON_PATCH)
        except (errors.NotFound, errors.Conflict):
            return  # gone, or replaced by a newer pod of the same name: not ours to write
        record.last_status = status
