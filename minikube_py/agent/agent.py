"""The node agent (our kubelet): runs the pods bound to this node and reports how they are doing.

Shape, as a client-go controller: an informer on pods feeds a work queue keyed by pod uid; a
small pool of workers runs `sync_pod(uid)`, which re-reads the pod and the runtime's view of its
containers and moves it one level-triggered step: sandbox, init containers (one at a time,
in order, each to completion), app containers (start, restart after back-off, give up per
restartPolicy), status, or graceful termination. The queue guarantees one
worker per pod at a time, so a pool of four serves hundreds of pods. Nothing polls: the queue
wakes on pod events, on container exits (one thread blocked in `runtime.wait_any`), on back-off
timers (`add_after`) and on probe results (ProbeManager's timer heap and pool). Terminations get
their own short-lived thread each, because a stubborn container holds its stop call for the whole
grace period and must not hold a worker.

Also here: the Node object and its heartbeat, re-adoption of running pods when the daemon
restarts, and the `NodeProxy` (logs, exec, inspect) the API server forwards to.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Iterator

from minikube_py.agent import containers as container_configs
from minikube_py.agent import logs as container_logs
from minikube_py.agent import node as node_status
from minikube_py.agent import podfiles
from minikube_py.agent.backoff import CrashLoopBackOff, format_duration
from minikube_py.agent.ipam import Ipam
from minikube_py.agent.probes import FAILURE, LIVENESS, READINESS, STARTUP, SUCCESS, ProbeManager, ProbeTarget, ProbeWorker
from minikube_py.agent.status import (
    CONTAINER_ID_PREFIX,
    START_ERROR_EXIT_CODE,
    ContainerRecord,
    Termination,
    pod_conditions,
    pod_phase,
)
from minikube_py.api import errors
from minikube_py.api.core import Node, Pod
from minikube_py.api.times import format_time, parse_time
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import Informer
from minikube_py.client.workqueue import WorkQueue
from minikube_py.clock import Clock
from minikube_py.runtime.types import CgroupLimits, ContainerState, RuntimeError_, Sandbox, SandboxConfig

log = logging.getLogger(__name__)

TERMINAL_PHASES = ("Succeeded", "Failed")
# Reasons for which the container never ran: retried on the start back-off, no restart counted.
CREATE_FAILURES = ("ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError")
EXIT_WAIT_SECONDS = 5.0
SANDBOX = ""  # the key of sandbox creation failures in PodRecord.failures
# A deletion noticed within this many seconds of its timestamp gets the whole grace period:
# timestamps have one-second precision, and kubelet also grants the full deletionGracePeriodSeconds.
DELETION_NOTICE_SLACK_SECONDS = 2.0
# The API takes any int64 grace period; a wait that long overflows the kernel's timeouts, and
# a century is as good as forever for a container that ignores SIGTERM.
LONGEST_GRACE_SECONDS = 100 * 365 * 24 * 3600.0
# Status writes are JSON patches that first test the pod's uid, so a status never lands on a
# newer pod of the same name (kubelet's status manager checks the uid the same way).
JSON_PATCH = "application/json-patch+json"


@dataclass
class AgentConfig:
    home: str
    cluster_name: str
    gateway: str  # the bridge's address, first of the pod CIDR
    prefix_len: int
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    backoff_reset: float = 600.0
    pods_max_pids: int = 1024
    max_pods: int = node_status.MAX_PODS  # the Node's pods capacity (kubelet's --max-pods)
    node_status_interval: float = 10.0
    workers: int = 4
    host_resolv_conf: str = "/etc/resolv.conf"


@dataclass
class PodRecord:
    """What the agent knows of one pod it runs, beyond what the API says."""

    uid: str
    namespace: str
    name: str
    pod: Pod
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    sandbox: Sandbox | None = None
    ip: str = ""
    start_time: float | None = None
    terminal_phase: str = ""
    last_status: dict | None = None
    terminating: bool = False
    failures: dict[str, int] = field(default_factory=dict)  # consecutive creation failures: container name or SANDBOX
    backoff_reported: dict[str, str] = field(default_factory=dict)  # container -> exit id of its last BackOff event
    restart_now: set[str] = field(default_factory=set)  # containers to restart without back-off
    # Init containers whose completion belonged to a sandbox that is gone: they run again in the
    # new one before any app container (re)starts.
    rerun_init: set[str] = field(default_factory=set)

    @property
    def display(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    @property
    def app_records(self) -> list[ContainerRecord]:
        return [self.containers[container.name] for container in self.pod.spec.containers]

    @property
    def init_records(self) -> list[ContainerRecord]:
        return [self.containers[container.name] for container in self.pod.spec.init_containers or []]

    def restart_policy(self, container_record: ContainerRecord) -> str:
        """The pod's restartPolicy as it applies to one container. An init container is restarted
        only when it failed, unless the policy is Never; after a sandbox recreation it runs again
        whatever its last exit was."""
        policy = self.pod.spec.restart_policy
        if not container_record.init_container or policy == "Never":
            return policy
        return "Always" if container_record.name in self.rerun_init else "OnFailure"

    def mark_rerun_after_sandbox_loss(self) -> None:
        """Every container that ran restarts without back-off; init containers run again first."""
        ran = {name for name, container_record in self.containers.items() if container_record.container_id}
        self.restart_now.update(ran)
        if self.pod.spec.restart_policy != "Never":
            self.rerun_init.update(name for name in ran if self.containers[name].init_container)


def _spec_hash(container) -> str:
    return hashlib.sha256(container.model_dump_json().encode()).hexdigest()[:16]


def _should_restart(restart_policy: str, exit_code: int) -> bool:
    return restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0)


class NodeAgent:
    """Runs this node's pods through `runtime` and is the NodeProxy the API server forwards to."""

    def __init__(self, client, runtime, node_name: str, ipam: Ipam, clock: Clock, config: AgentConfig):
        self.client = client
        self.runtime = runtime
        self.node_name = node_name
        self.ipam = ipam
        self.clock = clock
        self.config = config
        self.host_ip = node_status.host_ip()
        self.recorder = EventRecorder(client, "kubelet", clock, host=node_name)
        self.pods = Informer(client, "pods")
        self.queue = WorkQueue(clock, name="pods")
        self.backoff = CrashLoopBackOff(config.backoff_initial, config.backoff_max, config.backoff_reset)
        self.probes = ProbeManager(runtime, clock, self._on_probe_result)
        self._records: dict[str, PodRecord] = {}
        self._keys: dict[str, str] = {}  # uid -> namespace/name
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._terminations: dict[str, threading.Thread] = {}
        self._kills: set[threading.Thread] = set()
        self._finished: set[str] = set()  # uids stopped and deleted here, until the cache drops them
        self.pods.add_event_handler(self._on_pod, lambda old, new: self._on_pod(new), self._on_pod)

    # ------------------------------------------------------------------------------------------
    # Running

    def start(self) -> None:
        """Register the node, re-adopt what the runtime still runs, then follow the API."""
        self.register_node()
        self.pods.refresh()
        self.adopt()
        self.pods.start()
        self.probes.start()
        targets = [("heartbeat", self._heartbeat_loop), ("exit-loop", self._exit_loop)]
        targets += [(f"worker-{index}", self._worker_loop) for index in range(self.config.workers)]
        for name, target in targets:
            thread = threading.Thread(target=target, name=f"agent-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, stop_pods: bool = False, grace_period: float | None = None) -> None:
        """Stop following the API; with `stop_pods`, stop every container gracefully and remove every
        sandbox (the pods stay in the API, and start again on the next start). `grace_period`, when
        given, replaces every pod's terminationGracePeriodSeconds (`minikube-py stop --grace-period`)."""
        self._stopping.set()
        self.pods.stop()
        self.queue.shut_down()
        self.probes.stop()
        for thread in self._threads:
            # The exit watcher may sit in runtime.wait_any for EXIT_WAIT_SECONDS; it is a daemon
            # thread that returns on its own, so nobody waits for it.
            if thread.name != "agent-exit-loop":
                thread.join()
        self._threads.clear()
        self.wait_for_terminations()
        if stop_pods:
            with self._lock:
                records = list(self._records.values())
            stoppers = [threading.Thread(target=self._stop_pod, args=(
                record, record.pod.spec.termination_grace_period_seconds if grace_period is None else grace_period))
                for record in records]
            for thread in stoppers:
                thread.start()
            for thread in stoppers:
                thread.join()

    def _worker_loop(self) -> None:
        while not self._stopping.is_set():
            uid = self.queue.get()
            if uid is None:
                return
            self._process(uid)

    def _process(self, uid: str) -> None:
        try:
            self.sync_pod(uid)
            self.queue.forget(uid)
        except Exception:
            log.exception("pod %s: sync failed; retrying", self._keys.get(uid, uid))
            self.queue.add_rate_limited(uid)
        finally:
            self.queue.done(uid)

    def _exit_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                exited = self.runtime.wait_any(EXIT_WAIT_SECONDS)
            except Exception:
                if self._stopping.is_set():
                    return  # the runtime was shut down under us
                log.exception("waiting for container exits failed")
                self._stopping.wait(EXIT_WAIT_SECONDS)
                continue
            for state in exited:
                self.queue.add(state.sandbox_id)

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.config.node_status_interval):
            try:
                self.register_node()  # creates it again if somebody deleted it
            except Exception:
                log.exception("node %s: status heartbeat failed", self.node_name)

    def run_until_idle(self, max_rounds: int = 100) -> None:
        """Do on this thread what the agent's threads would do now: refresh the pod cache, collect
        container exits, run due probes and sync every pod that is due. For tests on a FakeClock."""
        for _ in range(max_rounds):
            self.wait_for_terminations()
            self.pods.refresh()
            exited = self.runtime.wait_any(0)
            for state in exited:
                self.queue.add(state.sandbox_id)
            probes_ran = self.probes.run_due()
            self.queue.tick()
            if not len(self.queue) and not exited and not probes_ran:
                return
            while len(self.queue):
                uid = self.queue.get(timeout=0)
                if uid is None:
                    break
                self._process(uid)
        raise RuntimeError(f"node agent: still busy after {max_rounds} rounds")

    def wait_for_terminations(self, timeout: float | None = None) -> None:
        """Wait for pod terminations and probe-triggered kills under way (tests, shutdown)."""
        with self._lock:
            threads = list(self._terminations.values()) + list(self._kills)
        for thread in threads:
            thread.join(timeout)

    # ------------------------------------------------------------------------------------------
    # The Node

    def register_node(self) -> None:
        try:
            self.client.get("nodes", self.node_name)
        except errors.NotFound:
            self.client.create(Node.model_validate({
                "metadata": {"name": self.node_name, "labels": node_status.node_labels(self.node_name)},
            }))
        self.update_node_status()

    def update_node_status(self) -> None:
        current = self.client.get("nodes", self.node_name)
        previous = [condition.to_dict() for condition in current.status.conditions or []]
        status = node_status.node_status(self.node_name, self.host_ip, self.clock.now(), previous,
                                         max_pods=self.config.max_pods)
        self.client.patch_status("nodes", self.node_name, {"status": status})

    # ------------------------------------------------------------------------------------------
    # Events in

    def _on_pod(self, pod: Pod) -> None:
        if pod.spec.node_name != self.node_name:
            return
        uid = pod.metadata.uid
        with self._lock:
            self._keys[uid] = f"{pod.metadata.namespace}/{pod.metadata.name}"
            record = self._records.get(uid)
            if record is not None and not record.terminating:
                # The last word of the API, also for a pod just deleted (its grace period).
                record.pod = pod
        self.queue.add(uid)

    def _current_pod(self, uid: str) -> Pod | None:
        key = self._keys.get(uid)
        pod = self.pods.get(key) if key else None
        if pod is None or pod.metadata.uid != uid or pod.spec.node_name != self.node_name:
            return None
        return pod

    # ------------------------------------------------------------------------------------------
    # The sync

    def sync_pod(self, uid: str) -> None:
        pod = self._current_pod(uid)
        with self._lock:
            record = self._records.get(uid)
        if pod is None:
            self._finished.discard(uid)
            if record is None:
                with self._lock:
                    self._keys.pop(uid, None)
            else:
                # Gone from the API (force-deleted, or deleted after we stopped it): clean up only.
                grace = record.pod.metadata.deletion_grace_period_seconds
                self._begin_termination(record, record.pod.spec.termination_grace_period_seconds if grace is None else grace,
                                        delete_object=False)
            return
        if uid in self._finished:
            return  # stopped and deleted by us; the cache has not seen the deletion yet
        if record is None:
            record = self._new_record(pod)
        record.pod = pod
        if record.terminating:
            return
        if pod.metadata.deletion_timestamp:
            self._begin_termination(record, self._remaining_grace(pod), delete_object=True)
            return
        if not record.terminal_phase:
            self._sync_running_pod(record)
        self._write_status(record)

    def _new_record(self, pod: Pod) -> PodRecord:
        record = PodRecord(pod.metadata.uid, pod.metadata.namespace, pod.metadata.name, pod)
        init_containers = pod.spec.init_containers or []
        # Before it exists a container waits as ContainerCreating, or as PodInitializing in a pod
        # with init containers (k/k convertToAPIContainerStatuses).
        waiting_reason = "PodInitializing" if init_containers else "ContainerCreating"
        for container in init_containers:
            record.containers[container.name] = ContainerRecord(container.name, container.image, init_container=True,
                                                                waiting_reason=waiting_reason)
        for container in pod.spec.containers:
            record.containers[container.name] = ContainerRecord(container.name, container.image,
                                                                waiting_reason=waiting_reason)
        with self._lock:
            self._records[record.uid] = record
            self._keys[record.uid] = f"{record.namespace}/{record.name}"
        return record

    def _sync_running_pod(self, record: PodRecord) -> None:
        pod = record.pod
        if record.start_time is None:
            record.start_time = self.clock.now()
        for container_record in record.containers.values():
            self._observe_container(record, container_record)
        if not self._ensure_sandbox(record):
            return
        wake_after: list[float] = []
        initialized, delay = self._step_init_containers(record)
        if delay is not None:
            wake_after.append(delay)
        if initialized:
            for container in pod.spec.containers:
                delay = self._step_container(record, container)
                if delay is not None:
                    wake_after.append(delay)
        phase = pod_phase(record.app_records, pod.spec.restart_policy, init_records=record.init_records)
        if phase in TERMINAL_PHASES:
            record.terminal_phase = phase
            self._release_pod_resources(record)
        elif wake_after:
            self.queue.add_after(record.uid, max(min(wake_after), 0.001))

    def _step_init_containers(self, record: PodRecord) -> tuple[bool, float | None]:
        """Run the init containers one at a time, in order, each to completion. Returns whether all
        have completed, and the seconds until the current one needs another look (back-off)."""
        for container in record.pod.spec.init_containers or []:
            container_record = record.containers[container.name]
            if container_record.completed and container.name not in record.rerun_init:
                continue
            if container_record.running is not None:
                return False, None  # its exit wakes the pod
            # Failed under restartPolicy Never, it stays terminated and the pod's phase is Failed.
            return False, self._step_container(record, container)
        return True, None

    def _observe_container(self, record: PodRecord, container_record: ContainerRecord) -> None:
        """Bring a running record up to date with the runtime: exited? ready? started?"""
        running = container_record.running
        if running is None:
            return
        try:
            state = self.runtime.container_state(running.id)
        except RuntimeError_:
            self._record_exit(record, container_record, _status_unknown(running.id, running.started_at, self.clock.now()))
            return
        if state.status == "running":
            if not container_record.init_container:
                self._apply_probe_results(container_record, state.id)
        else:
            self._record_exit(record, container_record, Termination.from_state(state))

    def _apply_probe_results(self, container_record: ContainerRecord, container_id: str) -> None:
        """started: the startup probe passed (or there is none); ready: started and readiness passes."""
        results = self.probes.results(container_id)
        container_record.started = results.get(STARTUP, SUCCESS) == SUCCESS
        container_record.ready = container_record.started and results.get(READINESS, SUCCESS) == SUCCESS

    def _record_exit(self, record: PodRecord, container_record: ContainerRecord, termination: Termination) -> None:
        self.probes.remove_container(termination.container_id)
        if termination.reason == "OOMKilled":
            self.recorder.event(record.pod, WARNING, "OOMKilled",
                                f"Container {container_record.name} was killed: out of memory (cgroup memory limit)")
        container_record.set_terminated(termination)

    def _ensure_sandbox(self, record: PodRecord) -> bool:
        if record.sandbox is not None and self.runtime.sandbox_alive(record.sandbox):
            return True
        if record.sandbox is not None:
            # The pause process is gone, and with it the pod's namespaces: start over in a new
            # sandbox; every container that ran is restarted (restartCount + 1) without back-off.
            log.warning("pod %s/%s: sandbox %s died; creating a new one", record.namespace, record.name, record.sandbox.id)
            self._remove_sandbox(record)
            record.mark_rerun_after_sandbox_loss()
        pod = record.pod
        try:
            record.ip = self.ipam.allocate(record.uid)
            directory = podfiles.write_pod_files(self.config.home, pod, record.ip, self.config.host_resolv_conf)
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
            return True
        except RuntimeError_ as error:
            self.recorder.event(pod, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {error.message}")
        except Exception as error:
            self.recorder.event(pod, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {error}")
        record.sandbox = None
        self.queue.add_after(record.uid, self._failure_delay(record, SANDBOX))
        return False

    def _lost(self, record: PodRecord, container_record: ContainerRecord) -> Termination:
        running = container_record.running
        try:
            state = self.runtime.container_state(running.id)
            if state.status == "exited":
                return Termination.from_state(state)
        except RuntimeError_:
            pass
        return _status_unknown(running.id, running.started_at, self.clock.now())

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
                                f"Back-off restarting failed container {container_record.name} in pod {record.display}")

    def _start_container(self, record: PodRecord, container, container_record: ContainerRecord,
                         restart: bool) -> float | None:
        pod = record.pod
        if restart:
            container_record.last_state = container_record.terminated or container_record.last_state
        attempt = container_record.restart_count + 1 if restart else container_record.restart_count
        try:
            image = self.runtime.image_config(container.image)
            container_record.image_id = image.id
            config = container_configs.build_container_config(
                pod, container, image, attempt, podfiles.pod_dir(self.config.home, record.uid), record.ip, self.host_ip)
        except RuntimeError_ as error:
            return self._creation_failed(record, container_record, error)
        self.recorder.event(pod, NORMAL, "Pulled", f'Container image "{container.image}" already present on machine')
        try:
            state = self.runtime.start_container(record.sandbox, config)
        except RuntimeError_ as error:
            if error.reason in CREATE_FAILURES:
                return self._creation_failed(record, container_record, error)
            # It was created but could not run (exec failed): a StartError termination, exit 128,
            # which counts as a run of the container for restarts and back-off.
            self.recorder.event(pod, WARNING, "Failed", f"Error: {error.message}")
            now = self.clock.now()
            container_record.restart_count = attempt
            container_record.set_terminated(
                Termination("", START_ERROR_EXIT_CODE, "StartError", now, now, message=error.message))
            return self._step_container(record, container)
        record.failures.pop(container.name, None)
        record.rerun_init.discard(container.name)
        container_record.restart_count = attempt
        container_record.set_running(state)
        self.recorder.event(pod, NORMAL, "Created", f"Created container {container.name}")
        self.recorder.event(pod, NORMAL, "Started", f"Started container {container.name}")
        if not container_record.init_container:  # init containers have no probes (validation)
            self._start_probes(record, container, state)
            self._apply_probe_results(container_record, state.id)
        return None

    def _creation_failed(self, record: PodRecord, container_record: ContainerRecord, error: RuntimeError_) -> float:
        """The container could not be made (image missing, bad config): wait with the reason, retry later."""
        delay = self._failure_delay(record, container_record.name)
        had_run = container_record.terminated is not None or container_record.last_state is not None
        container_record.set_waiting(error.reason, error.message)
        if had_run and container_record.last_state is None:
            container_record.last_state = container_record.terminated
        if error.reason == "ErrImageNeverPull":
            self.recorder.event(record.pod, WARNING, "ErrImageNeverPull", error.message)
        self.recorder.event(record.pod, WARNING, "Failed", f"Error: {error.reason}" if error.reason == "ErrImageNeverPull"
                            else f"Error: {error.message}")
        return delay

    def _failure_delay(self, record: PodRecord, what: str) -> float:
        """Retry delay after the n-th consecutive failure to create `what`: the crash-loop curve."""
        failures = record.failures.get(what, 0) + 1
        record.failures[what] = failures
        return min(self.config.backoff_initial * 2 ** (failures - 1), self.config.backoff_max)

    def _start_probes(self, record: PodRecord, container, state: ContainerState) -> None:
        named_ports = {port.name: port.container_port for port in container.ports or [] if port.name}
        # Probes count time on the agent's monotonic clock from the container's start.
        started = self.clock.monotonic() - max(0.0, self.clock.now() - state.started_at)
        self.probes.add_container(record.uid, container, ProbeTarget(state.id, record.ip, named_ports), started)

    def _on_probe_result(self, worker: ProbeWorker, success: bool, detail: str, changed: bool) -> None:
        with self._lock:
            record = self._records.get(worker.pod_uid)
        if record is None or record.terminating:
            return
        kind = worker.spec.kind
        if not success:
            self.recorder.event(record.pod, WARNING, "Unhealthy", f"{kind.capitalize()} probe failed: {detail}")
        if changed and kind in (LIVENESS, STARTUP) and worker.state.result == FAILURE:
            self._kill_unhealthy(record, worker)
        if changed:
            self.queue.add(worker.pod_uid)

    def _kill_unhealthy(self, record: PodRecord, worker: ProbeWorker) -> None:
        name = worker.container_name
        self.recorder.event(record.pod, NORMAL, "Killing", f"Container {name} failed {worker.spec.kind} probe, will be restarted")
        self.probes.remove_container(worker.target.container_id)
        container = next(c for c in record.pod.spec.containers if c.name == name)
        probe = getattr(container, f"{worker.spec.kind}_probe")
        grace = probe.termination_grace_period_seconds
        if grace is None:
            grace = record.pod.spec.termination_grace_period_seconds
        # The stop may take the whole grace period; the exit itself arrives through wait_any.
        thread = threading.Thread(target=self._stop_quietly, args=(worker.target.container_id, grace),
                                  name=f"kill-{name}", daemon=True)
        with self._lock:
            self._kills.add(thread)
        thread.start()

    def _stop_quietly(self, container_id: str, grace: float) -> None:
        try:
            self.runtime.stop_container(container_id, grace)
        except Exception:
            log.exception("stopping container %s failed", container_id)
        finally:
            with self._lock:
                self._kills.discard(threading.current_thread())

    # ------------------------------------------------------------------------------------------
    # Status out

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
        if init_records:
            status["initContainerStatuses"] = [container_record.to_dict() for container_record in init_records]
        status["containerStatuses"] = [container_record.to_dict() for container_record in records]
        return status

    def _write_status(self, record: PodRecord) -> None:
        status = self.compute_status(record)
        if status == record.last_status:
            return
        operations = [{"op": "test", "path": "/metadata/uid", "value": record.uid}]
        operations += [{"op": "add", "path": f"/status/{key}", "value": value} for key, value in status.items()]
        try:
            self.client.raw.patch_status("pods", record.namespace, record.name, operations, JSON_PATCH)
        except (errors.NotFound, errors.Conflict):
            return  # gone, or replaced by a newer pod of the same name: not ours to write
        record.last_status = status

    # ------------------------------------------------------------------------------------------
    # Termination

    def _remaining_grace(self, pod: Pod) -> float:
        grace = pod.metadata.deletion_grace_period_seconds
        if grace is None:
            grace = pod.spec.termination_grace_period_seconds
        deadline = parse_time(pod.metadata.deletion_timestamp)
        noticed_late_by = self.clock.now() - (deadline - grace)
        if noticed_late_by <= DELETION_NOTICE_SLACK_SECONDS:
            return float(grace)
        return max(0.0, deadline - self.clock.now())

    def _begin_termination(self, record: PodRecord, grace: float, delete_object: bool) -> None:
        with self._lock:
            if record.terminating:
                return
            record.terminating = True
            thread = threading.Thread(target=self._terminate, args=(record, grace, delete_object),
                                      name=f"terminate-{record.name}", daemon=True)
            self._terminations[record.uid] = thread
        thread.start()

    def _terminate(self, record: PodRecord, grace: float, delete_object: bool) -> None:
        done = False
        try:
            self._stop_pod(record, grace)
            if delete_object:
                if not record.terminal_phase:
                    record.terminal_phase = self._settle_for_removal(record)
                self._delete_object(record)
            # As kubelet's housekeeping, the pod directory (its logs) goes once the object is gone.
            podfiles.remove_pod_files(self.config.home, record.uid)
            done = True
        except Exception:
            log.exception("pod %s/%s: termination failed; trying again", record.namespace, record.name)
        finally:
            with self._lock:
                self._terminations.pop(record.uid, None)
                if not done:
                    # The next sync starts the termination over with what is left of the grace.
                    record.terminating = False
                else:
                    self._records.pop(record.uid, None)
                    if delete_object:
                        self._finished.add(record.uid)
                    else:
                        self._keys.pop(record.uid, None)
            if not done:
                self.queue.add_rate_limited(record.uid)

    def _settle_for_removal(self, record: PodRecord) -> str:
        """kubelet's TerminatePod for a deleted pod whose containers are stopped: a container that
        should have run but has no termination is reported as ContainerStatusUnknown (exit 137),
        and the pod gets a terminal phase (since 1.27), Failed unless its containers say otherwise."""
        app_records, init_records = record.app_records, record.init_records

        def ever_ran(container_record: ContainerRecord) -> bool:
            return container_record.state_kind != "waiting" or container_record.last_state is not None

        last_init = init_records[-1] if init_records else None
        initialized = (last_init is None or any(ever_ran(c) for c in app_records) or last_init.completed
                       or last_init.last_state is not None and last_init.last_state.exit_code == 0)
        unknown = list(app_records) if initialized else []
        # Init containers up to the last one that ever ran (at least the first one).
        ran = [index for index, container_record in enumerate(init_records) if ever_ran(container_record)]
        unknown += init_records[:ran[-1] + 1 if ran else 1]
        now = self.clock.now()
        for container_record in unknown:
            if container_record.terminated is None:
                container_record.set_terminated(_status_unknown("", 0.0, now))
        phase = pod_phase(app_records, record.pod.spec.restart_policy, pod_is_terminal=True, init_records=init_records)
        return phase if phase in TERMINAL_PHASES else "Failed"

    def _delete_object(self, record: PodRecord) -> None:
        """Write the final status and delete the object with grace 0, unless the object of that name
        is by now another pod (force-deleted and created again while this one stopped): both the
        status patch and the delete carry this pod's uid as a precondition, as kubelet's do."""
        self._write_status(record)
        try:
            self.client.delete("pods", record.name, namespace=record.namespace, grace_period_seconds=0,
                               preconditions={"uid": record.uid})
        except (errors.NotFound, errors.Conflict):
            pass  # gone already, or the name now belongs to another pod

    def _stop_pod(self, record: PodRecord, grace: float) -> None:
        """SIGTERM every running container (in parallel), SIGKILL after `grace`, then free everything."""
        self.probes.remove_pod(record.uid)
        grace = min(grace, LONGEST_GRACE_SECONDS)
        running = [container_record for container_record in record.containers.values() if container_record.running]

        def stop(container_record: ContainerRecord) -> None:
            try:
                state = self.runtime.stop_container(container_record.running.id, grace)
                container_record.set_terminated(Termination.from_state(state))
            except RuntimeError_ as error:
                log.warning("pod %s/%s: stopping %s: %s", record.namespace, record.name, container_record.name, error)

        # Every container gets its SIGTERM at once; the Killing events are written while they stop.
        stoppers = [threading.Thread(target=stop, args=(container_record,)) for container_record in running]
        for thread in stoppers:
            thread.start()
        for container_record in running:
            self.recorder.event(record.pod, NORMAL, "Killing", f"Stopping container {container_record.name}")
        for thread in stoppers:
            thread.join()
        self._release_pod_resources(record)
        self.backoff.forget(record.uid)

    def _release_pod_resources(self, record: PodRecord) -> None:
        """Containers, sandbox and IP go; logs (the pod directory) stay until the pod is deleted."""
        self.probes.remove_pod(record.uid)
        self._remove_sandbox(record)
        self.ipam.release(record.uid)

    def _remove_sandbox(self, record: PodRecord) -> None:
        for container_record in record.containers.values():
            if container_record.running is not None:
                self._record_exit(record, container_record, self._lost(record, container_record))
        sandbox, record.sandbox = record.sandbox, None
        self._discard_sandbox(record.uid, sandbox)

    def _discard_sandbox(self, pod_uid: str, sandbox: Sandbox | None) -> None:
        """Remove the sandbox (killing what runs in it) and every container record of the pod."""
        if sandbox is not None:
            self.runtime.remove_sandbox(sandbox)
        for state in self.runtime.list_containers(sandbox_id=pod_uid):
            self.runtime.remove_container(state.id)

    # ------------------------------------------------------------------------------------------
    # Re-adoption after a restart of the daemon

    def adopt(self) -> None:
        """Take over what the runtime still runs: adopt the sandboxes of pods still in the API,
        remove the others, release addresses nobody holds, and queue every pod of this node."""
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
        stored = {container_status.name: container_status
                  for container_status in (status.init_container_statuses or []) + (status.container_statuses or [])}
        now = self.clock.now()
        for name, container_record in record.containers.items():
            previous = stored.get(name)
            if previous is not None:
                container_record.restart_count = previous.restart_count
                container_record.image_id = previous.image_id or ""
                if previous.last_state is not None and previous.last_state.terminated is not None:
                    container_record.last_state = _termination_from_status(previous.last_state.terminated)
                if record.terminal_phase and previous.state is not None and previous.state.terminated is not None:
                    container_record.set_terminated(_termination_from_status(previous.state.terminated))
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
                    container_record.set_terminated(Termination.from_state(state))
            elif sandbox is None and previous is not None and previous.container_id:
                # It ran, but its sandbox is gone without a trace (the host rebooted, or `stop`).
                container_record.container_id = previous.container_id.removeprefix(CONTAINER_ID_PREFIX)
                stored_exit = previous.state.terminated if previous.state is not None else None
                if container_record.init_container and stored_exit is not None:
                    # A completed (or failed) init container keeps its real exit; it runs again anyway.
                    container_record.set_terminated(_termination_from_status(stored_exit))
                else:
                    container_record.set_terminated(_status_unknown("", now, now))
        if record.terminal_phase:
            self._discard_sandbox(record.uid, sandbox)
        elif sandbox is not None:
            # A sandbox whose pause died is replaced by the first sync (_ensure_sandbox).
            record.sandbox, record.ip = sandbox, sandbox.ip
            for container in pod.spec.containers:
                running = record.containers[container.name].running
                if running is not None:
                    self._start_probes(record, container, running)
        else:
            record.mark_rerun_after_sandbox_loss()

    # ------------------------------------------------------------------------------------------
    # NodeProxy: logs, exec, inspect

    def _record_for(self, namespace: str, name: str) -> PodRecord:
        with self._lock:
            for record in self._records.values():
                if record.namespace == namespace and record.name == name:
                    return record
        raise errors.NotFound(f'pods "{name}" not found on node {self.node_name}')

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
        path = container_configs.log_path(podfiles.pod_dir(self.config.home, record.uid), container_record.name, attempt)

        def still_running() -> bool:
            running = container_record.running
            if previous or running is None or running.attempt != attempt or self._stopping.is_set():
                return False
            try:
                return self.runtime.container_state(running.id).status == "running"
            except RuntimeError_:
                return False

        return container_logs.read_log(path, tail_lines, timestamps, follow, still_running)

    def exec(self, namespace, name, container, command, tty=False):
        record = self._record_for(namespace, name)
        container_record = self._container_record(record, container)
        if container_record.running is None:
            raise errors.BadRequest(f"container {container_record.name} is not running in pod {record.name}: "
                                    "exec needs a running container")
        return self.runtime.exec_stream(container_record.running.id, list(command), tty)

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


def _termination_from_status(terminated) -> Termination:
    container_id = (terminated.container_id or "").removeprefix(CONTAINER_ID_PREFIX)
    return Termination(
        container_id,
        terminated.exit_code,
        terminated.reason or ("Completed" if terminated.exit_code == 0 else "Error"),
        parse_time(terminated.started_at) if terminated.started_at else 0.0,
        parse_time(terminated.finished_at) if terminated.finished_at else 0.0,
        terminated.signal,
        terminated.message or "",
    )



def _status_unknown(container_id: str, started_at: float, now: float) -> Termination:
    """The runtime has no trace of a container that ran: kubelet reports this, with exit code 137."""
    return Termination(container_id, 137, "ContainerStatusUnknown", started_at, now,
                       message="The container could not be located when the pod was terminated")
