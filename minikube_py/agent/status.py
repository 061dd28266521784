"""Container status as one state machine, and pod status as the kubelet writes it (semantics.md 3.1-3.3).

The agent keeps one `ContainerRecord` per container of a pod (init containers included). Its
`state` is one of waiting, running or terminated, and moves only along these edges:

    waiting    -> running (started), terminated (start error, never located), waiting (new reason)
    running    -> terminated (exited, killed, lost)
    terminated -> waiting (back-off, creation failure), running (restarted), terminated (kept)

Anything else (a running container "waiting", or started twice) is a bug in the agent and raises
`IllegalTransition`. A running container may carry a `StopRequest` (a liveness kill or the pod's
termination): SIGTERM sent, SIGKILL due at its deadline.

The rest of the module turns records into the wire `status` dict. Everything there is a pure
function of its arguments, so the phase table and the conditions' lastTransitionTime rules are
tested directly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from minikube_py.api.times import format_time, parse_time
from minikube_py.runtime.types import ContainerState

CONTAINER_ID_PREFIX = "minikube-py://"
START_ERROR_EXIT_CODE = 128


@dataclass
class Termination:
    """One finished container instance, as status.containerStatuses[].state.terminated shows it."""

    container_id: str
    exit_code: int
    reason: str  # Completed, Error, OOMKilled, StartError
    started_at: float
    finished_at: float
    signal: int | None = None
    message: str = ""

    @staticmethod
    def from_state(state: ContainerState) -> "Termination":
        exit_code = state.exit_code if state.exit_code is not None else 0
        reason = "OOMKilled" if state.oom_killed else "Completed" if exit_code == 0 else "Error"
        return Termination(state.id, exit_code, reason, state.started_at, state.finished_at, state.signal)

    @staticmethod
    def from_status(terminated) -> "Termination":
        """From a stored status.containerStatuses[].state.terminated (re-adoption)."""
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

    @staticmethod
    def unknown(container_id: str, started_at: float, now: float) -> "Termination":
        """The runtime has no trace of a container that ran: kubelet reports this, with exit code 137."""
        return Termination(container_id, 137, "ContainerStatusUnknown", started_at, now,
                           message="The container could not be located when the pod was terminated")

    def to_dict(self) -> dict:
        result = {"exitCode": self.exit_code}
        if self.signal:
            result["signal"] = self.signal
        result["reason"] = self.reason
        if self.message:
            result["message"] = self.message
        if self.started_at:
            result["startedAt"] = format_time(self.started_at)
        result["finishedAt"] = format_time(self.finished_at)
        if self.container_id:
            result["containerID"] = CONTAINER_ID_PREFIX + self.container_id
        return result


class State(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    TERMINATED = "terminated"


TRANSITIONS = {
    State.WAITING: {State.WAITING, State.RUNNING, State.TERMINATED},
    State.RUNNING: {State.TERMINATED},
    State.TERMINATED: {State.WAITING, State.RUNNING, State.TERMINATED},
}


class IllegalTransition(Exception):
    """The agent tried to move a container along an edge the state machine does not have."""


@dataclass
class StopRequest:
    """A running container the agent is stopping: SIGTERM once, SIGKILL when `deadline` passes
    (agent's monotonic clock), and given up as lost `KILL_WAIT_SECONDS` after the SIGKILL."""

    grace: float
    deadline: float
    signalled: bool = False
    killed_at: float | None = None
    begun: bool = False  # the stop's first step was taken (its preStop hook started, or SIGTERM sent)
    pre_stop: object | None = None  # the preStop hook's HookRun (agent/hooks.py), before SIGTERM
    pre_stop_over: bool = False  # the preStop hook finished, or the grace period ran out on it


@dataclass
class ContainerRecord:
    """What the agent decided about one container: `state` says which of running / terminated /
    waiting (reason, message) holds; the setters are the state machine's only edges."""

    name: str
    image: str
    image_id: str = ""
    running: ContainerState | None = None
    terminated: Termination | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    last_state: Termination | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""  # the newest instance, running or not
    # An init container has no probes: it counts as started while it runs and as ready once it
    # completed (k/k prober_manager UpdatePodStatus), which the setters below keep up to date.
    init_container: bool = False
    state: State = State.WAITING
    stop: StopRequest | None = None  # only while running
    # While its postStart hook runs (agent/hooks.py HookRun) a running container is reported
    # waiting, ContainerCreating, as kubelet reports it until the hook returns; after a failed
    # hook, PostStartHookError with the hook's message until the container is gone.
    post_start: object | None = None
    sidecar: bool = False  # an init container with restartPolicy Always

    def _move(self, to: State) -> None:
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"container {self.name}: {self.state.value} -> {to.value} is not a legal transition")
        self.state = to

    def set_running(self, state: ContainerState) -> None:
        self._move(State.RUNNING)
        self.running, self.terminated, self.waiting_reason, self.waiting_message = state, None, "", ""
        self.container_id = state.id
        self.stop = None
        self.post_start = None
        if self.init_container:
            self.started, self.ready = True, False

    def set_waiting(self, reason: str, message: str = "") -> None:
        self._move(State.WAITING)
        self.running, self.terminated = None, None
        self.waiting_reason, self.waiting_message = reason, message
        self.ready = self.started = False

    def set_terminated(self, termination: Termination) -> None:
        self._move(State.TERMINATED)
        self.running, self.waiting_reason, self.waiting_message = None, "", ""
        self.terminated = termination
        self.stop = None
        self.post_start = None
        self.started = False
        self.ready = self.init_container and termination.exit_code == 0

    @property
    def completed(self) -> bool:
        """Terminated with exit code 0: for an init container, done."""
        return self.terminated is not None and self.terminated.exit_code == 0

    @property
    def state_kind(self) -> str:
        return self.state.value

    @property
    def reported_running(self) -> bool:
        """Running, and shown as running: its postStart hook (if any) returned."""
        return self.running is not None and self.post_start is None

    def to_dict(self) -> dict:
        hook = self.post_start
        if self.running is not None and hook is not None:
            error = getattr(hook, "error", "")
            state = {"waiting": {"reason": "PostStartHookError", "message": error} if error
                     else {"reason": "ContainerCreating"}}
        elif self.running is not None:
            state = {"running": {"startedAt": format_time(self.running.started_at)}}
        elif self.terminated is not None:
            state = {"terminated": self.terminated.to_dict()}
        else:
            waiting = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        result = {
            "name": self.name,
            "state": state,
            "lastState": {"terminated": self.last_state.to_dict()} if self.last_state else {},
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
        }
        if self.container_id:
            result["containerID"] = CONTAINER_ID_PREFIX + self.container_id
        result["started"] = self.started
        return result


def any_app_container_started(records: list[ContainerRecord]) -> bool:
    """k/k HasAnyRegularContainerStarted: an app container runs or ran, so the pod was initialized."""
    return any(record.running is not None or record.terminated is not None for record in records)


def pod_phase(records: list[ContainerRecord], restart_policy: str, pod_is_terminal: bool = False,
              init_records: list[ContainerRecord] = ()) -> str:
    """kubelet's getPhase (k/k pkg/kubelet/kubelet_pods.go); `records` are the app containers."""
    pending_initialization = failed_initialization = pending_sidecars = 0
    running = stopped = succeeded = waiting = 0
    for record in init_records:
        if record.sidecar:
            # A sidecar counts as running while it runs; ended, it does not count at all.
            if record.running is not None:
                running += 1
                pending_sidecars += not record.started
            elif record.terminated is None and record.last_state is None:
                pending_sidecars += 1
                waiting += 1
            continue
        if record.terminated is not None:
            failed_initialization += record.terminated.exit_code != 0
        elif record.running is None and record.last_state is not None:
            failed_initialization += record.last_state.exit_code != 0
        else:
            pending_initialization += 1
    if failed_initialization and restart_policy == "Never":
        return "Failed"
    if (pending_initialization or pending_sidecars) and not any_app_container_started(records):
        return "Pending"
    for record in records:
        if record.reported_running:
            running += 1
        elif record.running is not None:
            # In its postStart hook: reported waiting, as kubelet does until the hook returns.
            if record.last_state is not None:
                stopped += 1
            else:
                waiting += 1
        elif record.terminated is not None:
            stopped += 1
            succeeded += record.terminated.exit_code == 0
        elif record.last_state is not None:
            # Waiting to restart after a termination (CrashLoopBackOff) counts as stopped, so a
            # crash-looping pod stays Running.
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if pod_is_terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(type_: str, ok: bool, reason: str = "", message: str = "") -> dict:
    condition = {"type": type_, "status": "True" if ok else "False"}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _containers_ready(records: list[ContainerRecord], phase: str) -> dict:
    if phase == "Succeeded":
        return _condition("ContainersReady", False, "PodCompleted")
    unready = [record.name for record in records if not record.ready]
    if unready:
        return _condition("ContainersReady", False, "ContainersNotReady",
                          f"containers with unready status: [{' '.join(unready)}]")
    return _condition("ContainersReady", True)


def _initialized(records: list[ContainerRecord], init_records: list[ContainerRecord], phase: str) -> dict:
    """k/k GeneratePodInitializedCondition: regular init containers must have completed, sidecars
    must have started."""
    if not init_records:
        return _condition("Initialized", True)
    if phase == "Succeeded":
        return _condition("Initialized", True, "PodCompleted")
    if any_app_container_started(records):
        return _condition("Initialized", True)
    incomplete = [record.name for record in init_records
                  if (not record.started if record.sidecar else not record.completed)]
    if incomplete:
        return _condition("Initialized", False, "ContainersNotInitialized",
                          f"containers with incomplete status: [{' '.join(incomplete)}]")
    return _condition("Initialized", True)


def pod_conditions(records: list[ContainerRecord], phase: str, sandbox_ready: bool, previous: list[dict],
                   now: float, init_records: list[ContainerRecord] = ()) -> list[dict]:
    """The five conditions in kubelet's order; lastTransitionTime is kept while status is unchanged.
    `records` are the app containers, `init_records` the init containers."""
    # Sidecars' readiness counts, before the app containers' (k/k GenerateContainersReadyCondition).
    containers_ready = _containers_ready([record for record in init_records if record.sidecar] + list(records), phase)
    ready = dict(containers_ready, type="Ready")
    previous_by_type = {condition["type"]: condition for condition in previous or []}
    scheduled = previous_by_type.get("PodScheduled") or _condition("PodScheduled", True)
    conditions = [
        _condition("PodReadyToStartContainers", sandbox_ready),
        _initialized(records, init_records, phase),
        ready,
        containers_ready,
    ]
    for condition in conditions:
        before = previous_by_type.get(condition["type"])
        if before is not None and before.get("status") == condition["status"] and before.get("lastTransitionTime"):
            condition["lastTransitionTime"] = before["lastTransitionTime"]
        else:
            condition["lastTransitionTime"] = format_time(now)
    return conditions + [scheduled]
