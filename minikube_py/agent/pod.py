"""What the agent knows of each pod it runs: one record per pod, with one lifecycle state machine.

A pod's record moves along

    ACTIVE      -> COMPLETED (its containers reached a terminal phase; sandbox and IP released)
    ACTIVE      -> TERMINATING (deleted, gone from the API, or the node is stopping)
    COMPLETED   -> TERMINATING
    TERMINATING -> FINISHED (stopped and the object deleted; kept until the cache drops the pod)

A termination that fails half-way (an API error) stays TERMINATING and goes on from where it was
at the next try. A record leaves the `PodTable` when it is FINISHED and gone from the cache, or
when it was stopped without a delete. Everything about a pod goes through the one work queue keyed by its uid, so one worker at a
time moves one record; the table's lock only guards the dictionaries, which the NodeProxy and the
probe callbacks read from other threads.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field, replace

from minikube_py.agent.status import ContainerRecord, StopRequest
from minikube_py.api.core import Pod
from minikube_py.api.pod_requests import ResourceAmounts, pod_requests
from minikube_py.runtime.types import Sandbox

SANDBOX = ""  # the key of sandbox creation failures in PodRecord.failures
# The API takes any int64 grace period; a wait that long overflows the kernel's timeouts, and
# a century is as good as forever for a container that ignores SIGTERM.
LONGEST_GRACE_SECONDS = 100 * 365 * 24 * 3600.0


class Lifecycle(enum.Enum):
    ACTIVE = "active"
    COMPLETED = "completed"
    TERMINATING = "terminating"
    FINISHED = "finished"


TRANSITIONS = {
    Lifecycle.ACTIVE: {Lifecycle.COMPLETED, Lifecycle.TERMINATING},
    Lifecycle.COMPLETED: {Lifecycle.TERMINATING},
    Lifecycle.TERMINATING: {Lifecycle.FINISHED},
    Lifecycle.FINISHED: set(),
}


class IllegalPodTransition(Exception):
    """The agent tried to move a pod along an edge its lifecycle does not have."""


class Why(enum.Enum):
    """Why a pod terminates, which decides what is left at the end."""

    DELETED = "deleted"  # deleted through the API: final status, object deleted, pod directory removed
    GONE = "gone"  # no longer in the API (force-deleted): pod directory removed
    NODE_STOPPING = "node-stopping"  # `minikube-py stop`: the object and its logs stay for the next start


@dataclass
class TerminationPlan:
    """A termination under way: why, and the grace every running container gets."""

    why: Why
    grace: float


@dataclass
class PodRecord:
    """What the agent knows of one pod it runs, beyond what the API says."""

    uid: str
    namespace: str
    name: str
    pod: Pod
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    sandbox: Sandbox | None = None
    sandbox_problem: str = ""  # what is broken in the sandbox (found at adoption): it is replaced
    ip: str = ""
    start_time: float | None = None
    terminal_phase: str = ""  # Succeeded or Failed, once COMPLETED (or settled by a termination)
    # status.reason and status.message: DeadlineExceeded once activeDeadlineSeconds passed (the
    # pod is Failed at once and its containers are stopped while it is still ACTIVE).
    reason: str = ""
    message: str = ""
    last_status: dict | None = None
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    termination: TerminationPlan | None = None  # while TERMINATING
    failures: dict[str, int] = field(default_factory=dict)  # consecutive creation failures: container name or SANDBOX
    backoff_reported: dict[str, str] = field(default_factory=dict)  # container -> exit id of its last BackOff event
    restart_now: set[str] = field(default_factory=set)  # containers to restart without back-off
    # Init containers (and sidecars) whose run belonged to a sandbox that is gone: they run again in
    # the new one before any app container (re)starts.
    rerun_init: set[str] = field(default_factory=set)
    # The init sequence went through once: every init container completed and every sidecar
    # started, in order. From then on sidecars are restarted beside the app containers.
    initialized: bool = False
    _requests: ResourceAmounts | None = None

    @property
    def requests(self) -> ResourceAmounts:
        """What the pod asks of the node (admission), added up once: a pod's resources do not change."""
        if self._requests is None:
            self._requests = pod_requests(self.pod)
        return self._requests

    def move(self, to: Lifecycle) -> None:
        if to not in TRANSITIONS[self.lifecycle]:
            raise IllegalPodTransition(f"pod {self.display}: {self.lifecycle.value} -> {to.value} is not a legal transition")
        self.lifecycle = to

    @property
    def terminating(self) -> bool:
        return self.lifecycle in (Lifecycle.TERMINATING, Lifecycle.FINISHED)

    @property
    def display(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    @property
    def app_records(self) -> list[ContainerRecord]:
        return [self.containers[container.name] for container in self.pod.spec.containers]

    @property
    def init_records(self) -> list[ContainerRecord]:
        """Every init container, sidecars included, in spec order (status.initContainerStatuses)."""
        return [self.containers[container.name] for container in self.pod.spec.init_containers or []]

    @property
    def regular_init_records(self) -> list[ContainerRecord]:
        return [container_record for container_record in self.init_records if not container_record.sidecar]

    @property
    def sidecar_records(self) -> list[ContainerRecord]:
        return [container_record for container_record in self.init_records if container_record.sidecar]

    def container_spec(self, name: str):
        """The spec of the container (init or app) of that name; None if the pod has none."""
        return next((container for container in [*(self.pod.spec.init_containers or []), *self.pod.spec.containers]
                     if container.name == name), None)

    def running_records(self) -> list[ContainerRecord]:
        return [container_record for container_record in self.containers.values() if container_record.running]

    def stopping_records(self) -> list[ContainerRecord]:
        return [container_record for container_record in self.running_records() if container_record.stop is not None]

    def request_stop(self, container_record: ContainerRecord, grace: float, now: float) -> None:
        """Ask for a running container to be stopped (an earlier, shorter request wins)."""
        grace = min(grace, LONGEST_GRACE_SECONDS)
        stop = container_record.stop
        if stop is None:
            container_record.stop = StopRequest(grace, now + grace)
        elif now + grace < stop.deadline:
            # What the first request began (its preStop hook, its signals) goes on under the new deadline.
            container_record.stop = replace(stop, grace=grace, deadline=now + grace)

    def restart_policy(self, container_record: ContainerRecord) -> str:
        """The pod's restartPolicy as it applies to one container. An init container is restarted
        only when it failed, unless the policy is Never; after a sandbox recreation it runs again
        whatever its last exit was."""
        policy = self.pod.spec.restart_policy
        if container_record.sidecar:
            return "Always"  # while the pod runs; stopped for good once the app containers are done
        if not container_record.init_container or policy == "Never":
            return policy
        return "Always" if container_record.name in self.rerun_init else "OnFailure"

    def mark_rerun_after_sandbox_loss(self) -> None:
        """Every container that ran restarts without back-off; init containers run again first."""
        ran = {name for name, container_record in self.containers.items() if container_record.container_id}
        self.restart_now.update(ran)
        if self.pod.spec.restart_policy != "Never":
            self.rerun_init.update(name for name in ran if self.containers[name].init_container)
        self.rerun_init.update(name for name in ran if self.containers[name].sidecar)
        self.initialized = False


class PodTable:
    """The records of this node's pods by uid, and the namespace/name key of every uid seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._emptied = threading.Condition(self._lock)
        self.records: dict[str, PodRecord] = {}
        self.keys: dict[str, str] = {}  # uid -> namespace/name, for pods with or without a record

    def get(self, uid: str) -> PodRecord | None:
        with self._lock:
            return self.records.get(uid)

    def all(self) -> list[PodRecord]:
        with self._lock:
            return list(self.records.values())

    def key(self, uid: str) -> str | None:
        with self._lock:
            return self.keys.get(uid)

    def remember(self, uid: str, key: str) -> None:
        with self._lock:
            self.keys[uid] = key

    def add(self, record: PodRecord) -> None:
        with self._lock:
            self.records[record.uid] = record
            self.keys[record.uid] = f"{record.namespace}/{record.name}"

    def remove(self, uid: str, forget_key: bool) -> None:
        with self._lock:
            self.records.pop(uid, None)
            if forget_key:
                self.keys.pop(uid, None)
            if not self.records:
                self._emptied.notify_all()

    def forget_key(self, uid: str) -> None:
        with self._lock:
            if uid not in self.records:
                self.keys.pop(uid, None)

    def by_name(self, namespace: str, name: str) -> PodRecord | None:
        with self._lock:
            for record in self.records.values():
                if record.namespace == namespace and record.name == name and record.lifecycle != Lifecycle.FINISHED:
                    return record
        return None

    def wait_until_empty(self, timeout: float) -> bool:
        with self._lock:
            return self._emptied.wait_for(lambda: not self.records, timeout)
