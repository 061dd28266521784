"""Stopping containers and terminating pods, as steps of the agent's one work queue.

Nothing here blocks for a grace period. Stopping a container is a small state machine on its
record (`StopRequest`): the first sync sends SIGTERM (SIGKILL for grace 0) and asks to be synced
again at the deadline; the container's exit arrives through `Runtime.wait_any` and wakes the pod
like any other exit; a container still running at its deadline gets SIGKILL, and one that
survives even that for KILL_WAIT_SECONDS is given up as lost (the sandbox removal kills what is
left). A liveness or startup kill and a pod's termination use the same steps, so a stubborn
container never holds a worker and a thousand pods stop in parallel on a few workers.

A terminating pod (kubelet's TerminatePod): stop every container with the pod's grace, then
release sandbox and IP, then, for a pod deleted through the API, settle a terminal phase, write
the final status and delete the object (with its uid as a precondition), and remove its directory.

`PodTermination` is a part of `NodeAgent` (agent.py), split out by concern; it uses the agent's
runtime, clock, recorder, probes, ipam, client and pod table.
"""

from __future__ import annotations

import logging
import os
import signal

from minikube_py.agent import podfiles
from minikube_py.agent.containers import container_field_path
from minikube_py.agent.hooks import PRE_STOP
from minikube_py.agent.logs import read_log
from minikube_py.agent.pod import Lifecycle, PodRecord, TerminationPlan, Why
from minikube_py.agent.probes import ProbeTarget
from minikube_py.agent.status import ContainerRecord, Termination, pod_phase
from minikube_py.api import errors
from minikube_py.api.core import Pod
from minikube_py.api.times import parse_time
from minikube_py.client.events import NORMAL, WARNING
from minikube_py.runtime.types import ContainerRuntimeError, ContainerState, Sandbox

log = logging.getLogger(__name__)

TERMINAL_PHASES = ("Succeeded", "Failed")
# How long a container may take to die after SIGKILL before the agent gives it up as lost.
KILL_WAIT_SECONDS = 10.0
# A deletion noticed within this many seconds of its timestamp gets the whole grace period:
# timestamps have one-second precision, and kubelet also grants the full deletionGracePeriodSeconds.
DELETION_NOTICE_SLACK_SECONDS = 2.0
SMALLEST_WAIT_SECONDS = 0.001
# kubelet's minimumGracePeriodInSeconds: after a preStop hook, SIGTERM comes at least this long
# before SIGKILL, even when the hook used up the grace period.
MINIMUM_GRACE_AFTER_PRE_STOP_SECONDS = 2.0


# kubelet's limits (k/k pkg/kubelet/container): the message file is read up to its last 4 KiB; the
# log fallback takes the last 80 lines, at most their last 2 KiB.
TERMINATION_MESSAGE_MAX_BYTES = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_MAX_BYTES = 2048


def termination_log_path(home: str, pod_uid: str, container_name: str, attempt: int) -> str:
    """The host file bind-mounted at a container instance's terminationMessagePath (kubelet keeps
    one per instance under the pod's directory)."""
    return os.path.join(podfiles.pod_dir(home, pod_uid), "termination-log", container_name, str(attempt))


def prepare_termination_log(path: str) -> str:
    """An empty message file any container user may write (0666, as kubelet makes it; the pod's
    directory keeps other host users out)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb"):
        pass
    os.chmod(path, 0o666)
    return path


def termination_message(path: str, policy: str, exit_code: int, log_path: str) -> str:
    """kubelet's getTerminationMessage: the last 4 KiB of the message file; with
    FallbackToLogsOnError, a failed container whose file is empty (or missing) gets the tail of
    its log instead."""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - TERMINATION_MESSAGE_MAX_BYTES))
            data = file.read()
    except FileNotFoundError:
        data = b""
    except OSError as error:
        return f"Error on reading termination log {path}: {error}"
    if data or policy != "FallbackToLogsOnError" or exit_code == 0 or not log_path:
        return data.decode(errors="replace")
    tail = b"".join(read_log(log_path, tail_lines=FALLBACK_LOG_LINES))
    return tail[-FALLBACK_LOG_MAX_BYTES:].decode(errors="replace")


class PodTermination:
    """The stopping and terminating steps of `NodeAgent`."""

    # ---- stopping containers ---------------------------------------------------------------

    def _advance_stops(self, record: PodRecord) -> tuple[list[ContainerRecord], float | None]:
        """Move every stop request of the pod one step. Returns the containers whose stop began just
        now, and the seconds until the next deadline (None: nothing is being stopped)."""
        now = self.clock.monotonic()
        begun, waits = [], []
        for container_record in record.stopping_records():
            stop, container_id = container_record.stop, container_record.running.id
            if not stop.begun:
                stop.begun = True
                begun.append(container_record)
            if not stop.signalled:
                hook_wait = self._step_pre_stop(record, container_record, now)
                if hook_wait is None and container_record.sidecar:
                    hook_wait = self._wait_for_turn(record, container_record, now)
                if hook_wait is not None:
                    self._observe_container(record, container_record)
                    if container_record.running is not None:
                        waits.append(max(hook_wait, SMALLEST_WAIT_SECONDS))
                    continue
                stop.signalled = True
                if stop.grace > 0:
                    self._kill(record, container_id, self._stop_signal(container_record))
                else:
                    stop.killed_at = now
                    self._kill(record, container_id, signal.SIGKILL)
            elif stop.killed_at is None and now >= stop.deadline:
                stop.killed_at = now
                self._kill(record, container_id, signal.SIGKILL)
            elif stop.killed_at is not None and now >= stop.killed_at + KILL_WAIT_SECONDS:
                log.warning("pod %s/%s: container %s survived SIGKILL for %ss; giving it up as lost",
                            record.namespace, record.name, container_record.name, KILL_WAIT_SECONDS)
                self._record_exit(record, container_record, self._lost(container_record))
                continue
            # The signal may have done its work already: look before waiting for the exit event.
            self._observe_container(record, container_record)
            if container_record.running is not None:
                due = stop.deadline if stop.killed_at is None else stop.killed_at + KILL_WAIT_SECONDS
                waits.append(max(due - now, SMALLEST_WAIT_SECONDS))
        return begun, min(waits) if waits else None

    def _wait_for_turn(self, record: PodRecord, container_record: ContainerRecord, now: float) -> float | None:
        """kubelet's terminationOrdering: a sidecar gets SIGTERM only once every app container and
        every sidecar after it has stopped, or when its grace period is over; it then has at least
        2 s before SIGKILL. Returns the seconds to wait, None when its turn has come."""
        stop = container_record.stop
        sidecars = record.sidecar_records
        later = sidecars[sidecars.index(container_record) + 1:]
        before_it = [other for other in [*record.app_records, *later] if other.running is not None]
        if before_it and now < stop.deadline:
            return stop.deadline - now  # their exits wake the pod
        stop.deadline = max(stop.deadline, now + MINIMUM_GRACE_AFTER_PRE_STOP_SECONDS)
        return None

    def _step_pre_stop(self, record: PodRecord, container_record: ContainerRecord, now: float) -> float | None:
        """kubelet's executePreStopHook: before SIGTERM, run the container's preStop hook for at most
        the grace period (its time counts against it). Returns the seconds to wait for it, or None
        when SIGTERM is due. After a hook the container still gets MINIMUM_GRACE_AFTER_PRE_STOP
        seconds between SIGTERM and SIGKILL, as kubelet grants."""
        stop = container_record.stop
        if stop.pre_stop_over or stop.grace <= 0:
            return None
        container = record.container_spec(container_record.name)
        handler = container.lifecycle.pre_stop if container is not None and container.lifecycle is not None else None
        if handler is None:
            stop.pre_stop_over = True
            return None
        if stop.pre_stop is None:
            running = container_record.running
            target = ProbeTarget(running.id, record.ip,
                                 {port.name: port.container_port for port in container.ports or [] if port.name})
            stop.pre_stop = self.hooks.run(PRE_STOP, record.uid, record.display, container, handler, target)
        run = stop.pre_stop
        finished = self.hooks.finished(run)
        if not finished and now < stop.deadline:
            remaining = self.hooks.remaining(run)
            return stop.deadline - now if remaining is None else min(remaining, stop.deadline - now)
        stop.pre_stop_over = True
        if finished and run.failed:
            log.info("pod %s/%s: %s", record.namespace, record.name, run.error)
            # As kubelet: the event leaves out the hook's message, which may hold secrets.
            self.recorder.event(record.pod, WARNING, "FailedPreStopHook", "PreStopHook failed",
                                container_field_path(record.pod, container_record.name))
        elif not finished:
            log.info("pod %s/%s: the preStop hook of %s did not finish within %ss", record.namespace, record.name,
                     container_record.name, stop.grace)
        stop.deadline = max(stop.deadline, now + MINIMUM_GRACE_AFTER_PRE_STOP_SECONDS)
        return None

    def _stop_signal(self, container_record: ContainerRecord) -> int:
        """The signal that asks the container to stop: its image's StopSignal, as containerd sends
        it in place of SIGTERM (read from the image it started from), else SIGTERM."""
        if not container_record.image_id:
            return signal.SIGTERM
        try:
            text = self.runtime.image_config(container_record.image_id).stop_signal
        except ContainerRuntimeError:
            return signal.SIGTERM
        return signal_number(text) or signal.SIGTERM

    def _kill(self, record: PodRecord, container_id: str, number: int) -> None:
        try:
            self.runtime.kill_container(container_id, number)
        except ContainerRuntimeError as error:
            # Exited (or vanished) meanwhile: the next look at its state says which.
            log.info("pod %s/%s: signal %d to %s: %s", record.namespace, record.name, number, container_id, error.message)

    def _lost(self, container_record: ContainerRecord) -> Termination:
        running = container_record.running
        try:
            state = self.runtime.container_state(running.id)
            if state.status == "exited":
                return Termination.from_state(state)
        except ContainerRuntimeError:
            pass
        return Termination.unknown(running.id, running.started_at, self.clock.now())

    # ---- terminating pods ------------------------------------------------------------------

    def _with_termination_message(self, record: PodRecord, state: ContainerState, termination: Termination) -> Termination:
        """The termination with the container's message (terminationMessagePath, or its log with
        FallbackToLogsOnError) added to the runtime's, as kubelet adds it."""
        container = record.container_spec(state.name)
        if container is None or not container.termination_message_path:
            return termination
        path = termination_log_path(self.config.home, record.uid, state.name, state.attempt)
        message = termination_message(path, container.termination_message_policy, termination.exit_code, state.log_path)
        if message:
            termination.message = f"{termination.message}: {message}" if termination.message else message
        return termination

    def _remaining_grace(self, pod: Pod) -> float:
        grace = pod.metadata.deletion_grace_period_seconds
        if grace is None:
            grace = pod.spec.termination_grace_period_seconds
        deadline = parse_time(pod.metadata.deletion_timestamp)
        noticed_late_by = self.clock.now() - (deadline - grace)
        if noticed_late_by <= DELETION_NOTICE_SLACK_SECONDS:
            return float(grace)
        return max(0.0, deadline - self.clock.now())

    def _begin_termination(self, record: PodRecord, why: Why, grace: float) -> None:
        record.move(Lifecycle.TERMINATING)
        record.termination = TerminationPlan(why, grace)
        self.probes.remove_pod(record.uid)

    def _sync_terminating(self, record: PodRecord) -> float | None:
        """One step of a termination; returns seconds until the next look, None when it is over."""
        now = self.clock.monotonic()
        for container_record in record.running_records():
            self._observe_container(record, container_record)
            if container_record.running is not None:
                record.request_stop(container_record, record.termination.grace, now)
        begun, wait = self._advance_stops(record)
        # Every container's stop has begun by now; the Killing events are written while they stop.
        for container_record in begun:
            self.recorder.event(record.pod, NORMAL, "Killing", f"Stopping container {container_record.name}",
                                container_field_path(record.pod, container_record.name))
        if wait is not None:
            return wait
        self._finish_termination(record)
        return None

    def _finish_termination(self, record: PodRecord) -> None:
        """Every container has stopped: free everything, and for a deleted pod write the final status
        and delete the object. An API error raises; the next try goes on from here."""
        why = record.termination.why
        self._release_pod_resources(record)
        self.backoff.forget(record.uid)
        if why is Why.DELETED:
            if not record.terminal_phase:
                record.terminal_phase = self._settle_for_removal(record)
            self._delete_object(record)
        if why is not Why.NODE_STOPPING:
            # As kubelet's housekeeping, the pod directory (its logs) goes once the object is gone.
            podfiles.remove_pod_files(self.config.home, record.uid)
        if why is Why.DELETED:
            record.move(Lifecycle.FINISHED)  # kept until the cache drops the pod
        else:
            self.table.remove(record.uid, forget_key=True)
            self.image_pulls.forget(record.uid)

    def _settle_for_removal(self, record: PodRecord) -> str:
        """kubelet's TerminatePod for a deleted pod whose containers are stopped: a container that
        should have run but has no termination is reported as ContainerStatusUnknown (exit 137),
        and the pod gets a terminal phase (since 1.27), Failed unless its containers say otherwise."""
        app_records, init_records = record.app_records, record.regular_init_records

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
                container_record.set_terminated(Termination.unknown("", 0.0, now))
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

    def _release_pod_resources(self, record: PodRecord) -> None:
        """Containers, sandbox, IP and tmpfs volumes go; logs (the pod directory) stay until the pod is deleted.

        When the whole node stops, the stopped pod's sandbox (its pause process, cgroups and
        veth) is left to the runtime's shutdown, which removes every sandbox of the node in one
        pass right after (`LinuxRuntime.shutdown(remove_all=True)`): taking a thousand of them
        apart one by one first would only make `stop` wait.
        """
        self.probes.remove_pod(record.uid)
        node_stopping = record.termination is not None and record.termination.why is Why.NODE_STOPPING
        self._remove_sandbox(record, discard=not node_stopping)
        self.ipam.release(record.uid)
        self.volumes.tear_down(record.pod, podfiles.pod_dir(self.config.home, record.uid))

    def _remove_sandbox(self, record: PodRecord, discard: bool = True) -> None:
        for container_record in record.running_records():
            self._record_exit(record, container_record, self._lost(container_record))
        sandbox, record.sandbox = record.sandbox, None
        if discard:
            self._discard_sandbox(record.uid, sandbox)

    def _discard_sandbox(self, pod_uid: str, sandbox: Sandbox | None) -> None:
        """Remove the sandbox (killing what runs in it) and every container record of the pod;
        without a sandbox, containers the runtime still knows of the pod (a sandbox lost earlier)."""
        if sandbox is not None:
            self.runtime.remove_sandbox(sandbox)
            return
        for state in self.runtime.list_containers(sandbox_id=pod_uid):
            self.runtime.remove_container(state.id)


def signal_number(text: str) -> int | None:
    """A signal as an image config names it: "SIGINT", "INT", "2" or "SIGRTMIN+3"; None when unknown."""
    text = (text or "").strip().upper()
    if text.isdigit():
        return int(text) if 0 < int(text) < signal.NSIG else None
    name = text if text.startswith("SIG") else f"SIG{text}"
    base, plus, offset = name.partition("+")
    if base == "SIGRTMIN" and (not plus or offset.isdigit()):
        number = signal.SIGRTMIN + int(offset or 0)
        return number if number <= signal.SIGRTMAX else None
    try:
        return int(signal.Signals[name])
    except KeyError:
        return None
