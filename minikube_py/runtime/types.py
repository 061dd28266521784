"""The contract between the node agent and the container runtime.

The agent speaks only in these plain dataclasses; it never touches namespaces, mounts or
cgroups itself. `LinuxRuntime` (runtime/runtime.py) implements `Runtime` with real kernel
primitives; `FakeRuntime` (runtime/fake.py) implements it in memory for unit tests. Nothing here
knows about API objects: the agent translates a Pod into these configs.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Iterator, Protocol

# A cluster's name tags every host resource; Linux interface names hold 15 characters, so
# `mkpy-<name>` and the veth names (runtime/network.py) leave it ten.
CLUSTER_NAME_PATTERN = re.compile(r"[a-z][a-z0-9]{0,9}")

# Kubernetes' name for a pod's infra (pause) container; `wait_any` reports a dead pause under it.
SANDBOX_CONTAINER_NAME = "POD"


class ContainerRuntimeError(Exception):
    """A runtime operation failed; `reason` is the Kubernetes waiting/terminated reason to show.

    The one error type of the runtime, from the agent's calls down to the forked child's setup.
    reasons used: CreateContainerError (bad config: missing workingDir, unknown user),
    RunContainerError / StartError (exec failed: command not found), ErrImageNeverPull (image not
    in the local store), CreatePodSandboxError (pause or network could not be set up),
    RuntimeNotReady (no supervisor), ContainerStatusUnknown, ContainerNotRunning, NotFound.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class CgroupLimits:
    """Resource limits of one cgroup; None means unlimited / kernel default."""

    memory_bytes: int | None = None
    cpu_quota_us: int | None = None  # per cpu_period_us; limits.cpu 500m -> 50000 of 100000
    cpu_period_us: int = 100_000
    cpu_shares: int | None = None  # from requests.cpu: millis * 1024 / 1000, minimum 2 (v2: converted to weight)
    pids_max: int | None = None


@dataclass(frozen=True)
class ResourceUsage:
    """One reading of a cgroup's counters, as cAdvisor takes them for kubelet's resource metrics.

    `cpu_usage_ns`: CPU time used since the cgroup was made (cumulative; a rate needs two
    readings). `memory_working_set_bytes`: memory usage minus inactive file pages, what the
    kernel cannot reclaim easily and what the OOM killer and eviction look at. None: unreadable.
    """

    cpu_usage_ns: int | None
    memory_working_set_bytes: int | None


@dataclass
class SandboxConfig:
    pod_uid: str
    pod_name: str
    namespace: str
    hostname: str
    ip: str  # the pod IP the agent allocated
    prefix_len: int  # of the pod CIDR
    gateway: str  # the bridge address (first address of the pod CIDR)
    share_process_namespace: bool = False
    limits: CgroupLimits = field(default_factory=CgroupLimits)  # pod-level cgroup (pids_max per pod)


@dataclass
class Sandbox:
    """A running pod sandbox: the pause process and what was made around it."""

    id: str  # == pod_uid
    pod_name: str
    namespace: str
    pause_pid: int
    pause_start_time: int  # field 22 of /proc/PID/stat, guards against pid reuse on re-adoption
    ip: str
    host_veth: str
    cgroup: str  # pod cgroup path relative to each controller root, e.g. "minikube-py-dev/pod-<uid>"
    share_process_namespace: bool = False

    def namespace_path(self, kind: str) -> str:
        """kind is one of uts, ipc, net, pid."""
        return f"/proc/{self.pause_pid}/ns/{kind}"


@dataclass
class Mount:
    destination: str  # path inside the container
    source: str = ""  # host path for bind mounts
    type: str = "bind"  # "bind" or "tmpfs"
    read_only: bool = False
    group: int | None = None  # tmpfs only: owning group (the pod's fsGroup), group-writable and setgid


@dataclass
class ContainerConfig:
    sandbox_id: str
    name: str
    attempt: int  # restart count; part of the container id so restarts get a fresh upper dir
    image: str  # image reference as written in the pod, resolved through the local image store
    argv: list[str]  # final command line, already merged with the image's entrypoint/cmd
    env: list[tuple[str, str]] = field(default_factory=list)  # already merged with the image's Env
    working_dir: str = "/"
    uid: int = 0
    gid: int = 0
    mounts: list[Mount] = field(default_factory=list)  # volumes and /etc/hosts, hostname, resolv.conf
    limits: CgroupLimits = field(default_factory=CgroupLimits)
    log_path: str = ""  # CRI-format log file; the runtime writes it and rotates it
    log_max_bytes: int = 10 * 1024 * 1024
    log_max_files: int = 5
    # Security, resolved by the agent from the securityContext (runtime/container.py applies it).
    capabilities: list[str] | None = None  # "CAP_CHOWN", ...: the bounding set (and root's effective); None = Docker's 14
    privileged: bool = False  # every capability and device, no seccomp, writable /sys and /proc/sys
    read_only_rootfs: bool = False
    no_new_privileges: bool = False  # allowPrivilegeEscalation: false
    seccomp_profile: str = "runtime/default"  # "runtime/default", "unconfined" or "localhost/<absolute path>"
    supplemental_groups: list[int] = field(default_factory=list)  # supplementalGroups, then fsGroup
    devices: list[str] = field(default_factory=list)  # optional devices by name ("fuse"), see runtime/devices.py
    stdin: bool = False  # keep stdin open for attach (the pod's `stdin`)
    tty: bool = False  # stdin, stdout and stderr are one terminal (the pod's `tty`)
    target_container_id: str | None = None  # join this running container's PID namespace (ephemeral containers)


@dataclass
class ContainerState:
    """What the runtime knows of one container; read from the supervisor's records, not guessed."""

    id: str
    sandbox_id: str
    name: str
    attempt: int
    status: str  # "running" or "exited"
    pid: int = 0
    started_at: float = 0.0  # epoch seconds
    finished_at: float = 0.0
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    log_path: str = ""
    cgroup: str = ""


@dataclass
class ResolvedImage:
    """An image of the local store as a pod's `image:` resolved to it: its id and how its config
    says it should run; the agent merges that with the pod spec (command/args, env, workingDir, user)."""

    reference: str  # as written in the pod, e.g. "busybox"
    id: str  # content digest, "sha256:<hex>"; shown as the container status's imageID
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[tuple[str, str]] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""  # numeric "uid:gid" (names resolved from the image's /etc/passwd); runAsUser/runAsGroup win
    # Pulled from a registry (it has a repo digest). Images made on this node (busybox, imported,
    # loaded, built) are not, and `imagePullPolicy: Always` uses them as they are: there is nowhere to pull from.
    from_registry: bool = False
    size: int = 0  # bytes of its unpacked layers
    stop_signal: str = ""  # the image's StopSignal ("SIGINT", "2"); SIGTERM when empty


@dataclass
class PulledImage:
    """What a pull gives the agent for its `Pulled` event."""

    image: ResolvedImage
    seconds: float
    downloaded: int  # bytes fetched (0 when everything was here or another pull fetched it)


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class ExecSession(Protocol):
    """An interactive exec: bytes in, bytes out, an exit code at the end."""

    def write_stdin(self, data: bytes) -> None: ...
    def close_stdin(self) -> None: ...
    def resize(self, width: int, height: int) -> None: ...  # a TTY's new size; nothing without one
    def read(self) -> Iterator[tuple[int, bytes]]:  # (1 stdout | 2 stderr, data) until both close
        ...
    def wait(self) -> int: ...
    def kill(self) -> None: ...


class ContainerInput(Protocol):
    """Where attach writes: `write`, `close_stdin` (end of input), `resize` (TTY), `close`."""

    def write(self, data: bytes) -> None: ...
    def close_stdin(self) -> None: ...
    def resize(self, width: int, height: int) -> None: ...
    def close(self) -> None: ...


class Runtime(Protocol):
    def start(self) -> None:
        """Make the node ready: supervisor running, bridge up, cluster cgroup parent created."""

    def create_sandbox(self, config: SandboxConfig) -> Sandbox:
        """Start pause in new uts/ipc/net (+pid) namespaces, attach eth0 with config.ip."""

    def sandbox_alive(self, sandbox: Sandbox) -> bool: ...

    def check_sandbox_network(self, sandbox: Sandbox) -> str:
        """What is missing of the sandbox's network (host veth, eth0, the pod IP), "" when it is
        whole; for sandboxes found after a crash, whose creation may have been cut short."""

    def image_config(self, reference: str) -> ResolvedImage:
        """The image's config from the local store; raises ContainerRuntimeError("ErrImageNeverPull",
        'Container image "<ref>" is not present with pull policy of Never') when it is not there."""

    def pull_image(self, reference: str, docker_configs: list[tuple[str, bytes]]) -> PulledImage:
        """Pull from the image's registry (mirrors from registries.yaml) with the credentials of
        `docker_configs` ((where, .dockerconfigjson content) pairs: the pod's pull secrets);
        raises ContainerRuntimeError("ErrImagePull", containerd's message) when it cannot."""

    def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Kill everything left in the pod, stop pause, remove veth and pod cgroup, and forget every
        container of the pod (all attempts). Idempotent."""

    def start_container(self, sandbox: Sandbox, config: ContainerConfig) -> ContainerState:
        """Create and start; raises ContainerRuntimeError with a Kubernetes reason when it cannot."""

    def container_state(self, container_id: str) -> ContainerState: ...

    def wait_any(self, timeout: float) -> list[ContainerState]:
        """Block up to timeout for exits; return the containers that exited since the last call, and
        for each sandbox whose pause process died, a state named SANDBOX_CONTAINER_NAME ("POD")."""

    def stop_container(self, container_id: str, grace_seconds: float) -> ContainerState:
        """SIGTERM, wait up to grace, then SIGKILL; returns the final (exited) state."""

    def kill_container(self, container_id: str, signal_number: int) -> None:
        """Send a signal to the container's process and return at once (the exit arrives through
        wait_any); SIGKILL also kills whatever else is left in the container's cgroup."""

    def remove_container(self, container_id: str) -> None: ...

    def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult: ...

    def exec_stream(self, container_id: str, argv: list[str], tty: bool = False) -> ExecSession: ...

    def open_container_input(self, container_id: str) -> "ContainerInput | None":
        """attach's input: a TTY container's terminal or a `stdin: true` container's stdin."""

    def close_container_stdin(self, container_id: str) -> None:
        """End a `stdin: true` container's input for good (stdinOnce)."""

    def connect_in_sandbox(self, sandbox: Sandbox, port: int, timeout: float) -> socket.socket:
        """A TCP connection to localhost:port in the pod's network namespace (port-forward)."""

    def list_sandboxes(self) -> list[Sandbox]:
        """Sandboxes found on the host (for re-adoption after a daemon restart)."""

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerState]:
        """Containers known to the runtime; with sandbox_id, only that pod's."""

    def inspect(self, sandbox: Sandbox, container_ids: dict[str, str]) -> dict:
        """Facts read from /proc and cgroupfs: pids, namespace inodes, cgroup paths and limits, rootfs, veth."""

    def container_usage(self, sandbox: Sandbox, container_id: str) -> ResourceUsage | None:
        """The container's cgroup counters now; None when its cgroup is gone."""

    def node_usage(self) -> ResourceUsage | None:
        """The counters of the cgroup every pod of this node runs under."""

    def mount_memory_volume(self, path: str, size_bytes: int | None = None) -> None:
        """A tmpfs at the host directory `path` (a pod's secret, projected or memory emptyDir
        volume), of at most `size_bytes`; idempotent."""

    def unmount_memory_volume(self, path: str) -> None:
        """Undo mount_memory_volume; nothing when nothing is mounted there."""

    def shutdown(self, remove_all: bool) -> None:
        """remove_all: stop every pod and remove supervisor, bridge and cgroup parent (minikube-py stop)."""
