"""`LinuxRuntime`: the `Runtime` the node agent uses on a real host, built from the runtime's parts.

The daemon side of the runtime. It prepares what needs no fork (cgroups with their limits, the
image's layers, the pod's veth) and asks the supervisor (supervisor.py, a separate long-lived
process reached over `supervisor.sock`) to fork pause processes and containers, so containers
outlive the daemon. State is read back from the supervisor's records (`containers/<id>/state.json`)
and facts for `inspect` from /proc and cgroupfs, never from this object's memory: a restarted
daemon sees exactly what a running one sees.

It stays one module of about 700 lines because it is one class implementing one protocol
(`Runtime`); its parts (cgroups, network, images, the supervisor's wire) already live in their
own modules.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import logging
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from typing import Any, Iterator

from minikube_py.runtime import devices, linux, memory_volumes, monitor, protocol, seccomp
from minikube_py.runtime.cgroups import CgroupDriver, disable_fast_attach, enable_fast_attach
from minikube_py.runtime.container import ContainerSpec, SandboxSpec, security_fields
from minikube_py.runtime.images import ImageStore, resolve_user
from minikube_py.runtime.images.auth import AuthConfigError, Keyring
from minikube_py.runtime.images.hosts import RegistriesConfigError, RegistryHosts
from minikube_py.runtime.images.puller import PullError, Puller
from minikube_py.runtime.images.registry import RegistryClient
from minikube_py.runtime.network import PodNetwork
from minikube_py.runtime.pause import ensure_pause_binary
from minikube_py.runtime.protocol import ContainerRecord, ContainerStatus, SandboxRecord
from minikube_py.runtime.supervisor import process_alive, socket_path
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

SUPERVISOR_START_TIMEOUT = 10.0
SUPERVISOR_STOP_TIMEOUT = 10.0
KILL_WAIT_SECONDS = 10.0
PARALLEL_REMOVALS = 8  # threads deleting container directories when the node stops
READ_CHUNK = 1024 * 1024  # an exec's output is read this much at a time (one message at most)
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = 1031
CONSOLE_WAIT_SECONDS = 10.0  # how long nsexec may take to enter a container and send its pty
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANDBOX_NAMESPACES = ("uts", "ipc", "net")
log = logging.getLogger(__name__)
BUSYBOX_BINARY = "/usr/bin/busybox"


def python_module_command(module: str, *arguments: str) -> tuple[list[str], dict[str, str]]:
    """Command and environment to run one of our modules in a fresh interpreter, fast.

    `-S` skips site-packages start-up (tens of ms of .pth files); the modules run this way need
    only the standard library, and PYTHONPATH points at this copy of minikube_py.
    """
    search_path = os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")]))
    return [sys.executable, "-S", "-m", module, *arguments], dict(os.environ, PYTHONPATH=search_path)


def container_id_for(sandbox_id: str, name: str, attempt: int) -> str:
    """Stable per (pod, container, restart): the same attempt always names the same directory."""
    return hashlib.sha256(f"{sandbox_id}/{name}/{attempt}".encode()).hexdigest()[:32]


def state_from_record(record: ContainerRecord) -> ContainerState:
    running = record.status == ContainerStatus.RUNNING
    return ContainerState(
        id=record.id, sandbox_id=record.sandbox_id, name=record.name, attempt=record.attempt,
        status="running" if running else "exited", pid=record.pid if running else 0,
        started_at=record.started_at, finished_at=record.finished_at, exit_code=record.exit_code,
        signal=record.signal, oom_killed=record.oom_killed, log_path=record.log_path, cgroup=record.cgroup,
    )


def remove_trees_in_parallel(directories: list[str]) -> None:
    """Delete whole directories, their entries on several threads at once.

    A container's directory is a dozen files and directories; deleting a thousand of them one
    after the other waits on the filesystem's metadata writes for seconds, while different parent
    directories can be worked on at the same time.
    """
    entries = []
    for directory in directories:
        try:
            entries += [os.path.join(directory, entry) for entry in os.listdir(directory)]
        except FileNotFoundError:
            continue
    with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL_REMOVALS, thread_name_prefix="remove") as pool:
        for _ in pool.map(lambda path: shutil.rmtree(path, ignore_errors=True), entries):
            pass
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


def sandbox_exit_state(record: SandboxRecord) -> ContainerState:
    """A dead pause process, reported like a container exit of the pod's infra container "POD"."""
    return ContainerState(
        id=record.id, sandbox_id=record.id, name=SANDBOX_CONTAINER_NAME, attempt=0, status="exited",
        started_at=record.started_at, finished_at=record.finished_at, cgroup=record.cgroup,
    )


def sandbox_from_record(record: SandboxRecord) -> Sandbox:
    return Sandbox(
        id=record.id, pod_name=record.pod_name, namespace=record.namespace, pause_pid=record.pid,
        pause_start_time=record.start_time, ip=record.ip, host_veth=record.host_veth,
        cgroup=record.cgroup, share_process_namespace=record.share_process_namespace,
    )


def namespace_inodes(pid: int) -> dict[str, int]:
    inodes = {}
    for kind in ("uts", "ipc", "net", "pid", "mnt", "cgroup"):
        try:
            inodes[kind] = linux.namespace_inode(pid, kind)
        except OSError:
            pass
    return inodes


def container_security(spec: ContainerSpec | None, pid: int) -> dict:
    """What confines a container: its seccomp profile and the kernel's word on it, capabilities."""
    status: dict[str, str] = {}
    if pid:
        try:
            with open(f"/proc/{pid}/status") as file:
                status = dict(line.rstrip("\n").split(":\t", 1) for line in file if ":\t" in line)
        except OSError:
            pass
    profile = spec.seccomp_profile if spec is not None else ""
    return {
        "seccompProfile": {seccomp.RUNTIME_DEFAULT: "RuntimeDefault", seccomp.UNCONFINED: "Unconfined"}.get(profile, profile),
        "seccompMode": status.get("Seccomp", ""),
        "capEff": status.get("CapEff", ""),
        "capBnd": status.get("CapBnd", ""),
        "noNewPrivs": status.get("NoNewPrivs", ""),
        "privileged": bool(spec and spec.privileged),
        "readOnlyRootFilesystem": bool(spec and spec.read_only_rootfs),
    }


class SupervisorClient:
    """Typed requests to the supervisor (protocol.py), one short connection per request (thread-safe)."""

    def __init__(self, home: str):
        self.path = socket_path(home)

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        return sock

    def request(self, request: protocol.Request, timeout: float = 60.0) -> protocol.Reply:
        """The supervisor's reply, which may be an ErrorReply."""
        try:
            with self.connect() as sock:
                sock.settimeout(timeout)
                sock.sendall(protocol.encode_request(request))
                reader = sock.makefile("rb")
                line = reader.readline()
        except OSError as error:
            raise ContainerRuntimeError("RuntimeNotReady", f"supervisor at {self.path}: {error}; is the node started?") from error
        if not line:
            raise ContainerRuntimeError("RuntimeNotReady", f"supervisor at {self.path} closed the connection during {request.op}")
        return protocol.decode_reply(request, line)

    def call(self, request: protocol.Request, timeout: float = 60.0) -> Any:
        """Like request, but an error reply raises ContainerRuntimeError with the supervisor's reason.

        Returns the reply type protocol.REPLIES names for the request."""
        reply = self.request(request, timeout)
        if isinstance(reply, protocol.ErrorReply):
            raise ContainerRuntimeError(reply.reason, reply.message)
        return reply

    def ping(self) -> protocol.Pong | None:
        """The running supervisor's pid and protocol version; None when none answers."""
        try:
            reply = self.request(protocol.Ping(), timeout=5.0)
        except (ContainerRuntimeError, ValueError):
            return None
        return reply if isinstance(reply, protocol.Pong) else None

    def alive(self) -> bool:
        return self.ping() is not None


class ContainerInput:
    """attach's way into a running container: its TTY's master or its stdin pipe (a descriptor of
    our own, closed by `close`). The master may be non-blocking (the monitor reads it so): a full
    terminal buffer is waited out rather than lost."""

    def __init__(self, fd: int, tty: bool):
        self.fd = fd
        self.tty = tty
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            if self.fd < 0:
                raise BrokenPipeError("the container's input is closed")
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self.fd, view):]
                except BlockingIOError:
                    select.select([], [self.fd], [], 1.0)

    def close_stdin(self) -> None:
        """A terminal gets end of file as its EOF character; a pipe by closing our end."""
        if self.tty:
            with self._lock:
                if self.fd >= 0:
                    os.write(self.fd, bytes([termios.tcgetattr(self.fd)[6][termios.VEOF][0]]))
        else:
            self.close()

    def resize(self, width: int, height: int) -> None:
        with self._lock:
            if self.tty and self.fd >= 0:
                fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def _socket_in_namespace(namespace_path: str, family: int) -> socket.socket:
    """A socket created in another network namespace, by a thread that joins it and then ends."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            with open(namespace_path) as namespace:
                linux.setns(namespace.fileno(), linux.CLONE_NEWNET)
            made.append(socket.socket(family, socket.SOCK_STREAM))
        except BaseException as error:  # reported to the caller below
            failed.append(error)

    thread = threading.Thread(target=make, name="netns-socket")
    thread.start()
    thread.join()
    if failed:
        raise ContainerRuntimeError("PortForwardFailed", f"cannot enter the pod's network namespace: {failed[0]}")
    return made[0]


class ProcessExecSession:
    """An `exec` running as an nsexec process: pipes (or a pty) in the daemon, the command in the container.

    Input (stdin, resizes) comes from one thread while another reads output and waits; the pty
    master is closed under a lock so a late write never lands on a reused descriptor."""

    def __init__(self, command: list[str], environment: dict[str, str], console: socket.socket | None = None,
                 console_fd: int = -1):
        """`console`: for a TTY, our end of the socket nsexec sends the pty master over (its end,
        `console_fd`, is passed to nsexec at the same number)."""
        self.tty = console is not None
        self._lock = threading.Lock()
        self.master = -1
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=environment,
                                        pass_fds=(console_fd,) if console is not None else ())
        self._outputs = {self.process.stdout.fileno(): 1, self.process.stderr.fileno(): 2}
        for fd in self._outputs:
            try:
                fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)  # room for a fast writer while a message goes out
            except OSError:
                pass
        if console is not None:
            # nsexec sends the master once it has entered the container; if it fails first, it
            # exits and says why on stderr, and the session is one without a terminal.
            console.settimeout(CONSOLE_WAIT_SECONDS)
            try:
                _, fds, _, _ = socket.recv_fds(console, 16, 1)
            except OSError:
                fds = []
            finally:
                console.close()
            if fds:
                self.master = fds[0]
                os.set_inheritable(self.master, False)
                self._outputs[self.master] = 1
            self.process.stdin.close()

    def write_stdin(self, data: bytes) -> None:
        if self.tty:
            with self._lock:
                if self.master < 0:
                    raise BrokenPipeError("the exec has no terminal (any more)")
                master = self.master
            view = memoryview(data)
            while view:
                view = view[os.write(master, view):]
        else:
            self.process.stdin.write(data)
            self.process.stdin.flush()

    def close_stdin(self) -> None:
        if self.tty:
            with self._lock:
                if self.master >= 0:
                    os.write(self.master, bytes([termios.tcgetattr(self.master)[6][termios.VEOF][0]]))
        elif not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def resize(self, width: int, height: int) -> None:
        with self._lock:
            if self.tty and self.master >= 0:
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def read(self) -> Iterator[tuple[int, bytes]]:
        """(1 stdout | 2 stderr, data) until every output closed. What is ready at once is read
        in one piece (up to READ_CHUNK): a command writing 4 KiB at a time then costs the stream
        one message per ~1 MiB instead of one per write. The pieces are joined once (not grown
        piece by piece, which copied each byte once per later piece)."""
        open_fds = dict(self._outputs)
        while open_fds:
            readable, _, _ = select.select(list(open_fds), [], [])
            for fd in readable:
                pieces: list[bytes] = []
                size = 0
                while size < READ_CHUNK:
                    try:
                        piece = os.read(fd, READ_CHUNK - size)
                    except OSError:  # a pty master reads EIO once the last slave closed
                        piece = b""
                    if not piece:
                        if not pieces:
                            del open_fds[fd]
                        break
                    pieces.append(piece)
                    size += len(piece)
                    if not select.select([fd], [], [], 0)[0]:
                        break
                if pieces:
                    yield open_fds[fd], pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def wait(self) -> int:
        code = self.process.wait()
        with self._lock:
            if self.master >= 0:
                os.close(self.master)
                self.master = -1
        return code if code >= 0 else 128 - code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # nsexec kills and reaps the command


class LinuxRuntime:
    """Pods as real processes: pause + containers forked by the supervisor, cgroups, veths, overlay roots."""

    def __init__(self, cluster_name: str, home: str, pod_cidr: str, cgroups: CgroupDriver | None = None,
                 network: PodNetwork | None = None, images: ImageStore | None = None,
                 image_gc_percent: tuple[float, float] = (85, 80), cgroup_parent: str | None = None):
        self.cluster_name = cluster_name
        self.home = os.path.abspath(home)
        self.pod_cidr = pod_cidr
        # A node added on this host (nodes.py) has its own: `minikube-py-<cluster>-<node>`.
        self.cgroup_parent = cgroup_parent or f"minikube-py-{cluster_name}"
        self.containers_dir = os.path.join(self.home, "containers")
        self._cgroups = cgroups
        self._network = network
        self._images = images
        self._puller: Puller | None = None
        self._registries_stamp: tuple[float, int] | None = None
        self._puller_lock = threading.Lock()
        # Kubelet's imageGCHighThresholdPercent / imageGCLowThresholdPercent, checked every 5 minutes.
        self.image_gc_percent = image_gc_percent
        self._image_gc_stop = threading.Event()
        self.supervisor = SupervisorClient(self.home)
        self.seccomp_programs = seccomp.ProgramCache(os.path.join(self.home, "cache", "seccomp"))
        self.pause_binary = ""
        self._subscription: socket.socket | None = None
        self._subscription_buffer = b""
        self._subscription_lock = threading.Lock()

    # ---- parts, made on first use so a runtime object is cheap to construct

    @property
    def cgroups(self) -> CgroupDriver:
        if self._cgroups is None:
            self._cgroups = CgroupDriver.detect()
        return self._cgroups

    @property
    def network(self) -> PodNetwork:
        if self._network is None:
            self._network = PodNetwork(self.cluster_name, self.pod_cidr)
        return self._network

    @property
    def images(self) -> ImageStore:
        if self._images is None:
            self._images = ImageStore(self.home)
        return self._images

    # ---- node

    def start(self) -> None:
        """Make the node ready: pause binary, busybox image, cgroup parent, bridge, supervisor, exit events."""
        for directory in (self.home, self.containers_dir, os.path.join(self.home, "sandboxes")):
            os.makedirs(directory, exist_ok=True)
        self.pause_binary = ensure_pause_binary(self.home)
        if os.path.exists(BUSYBOX_BINARY):
            self.images.ensure_busybox(BUSYBOX_BINARY)  # the image every tutorial and test starts from
        self.cgroups.create(self.cgroup_parent)
        enable_fast_attach(self.home, self.cluster_name)
        self.network.ensure_bridge()
        running = self.supervisor.ping()
        if running is None:
            self._start_supervisor()
        elif running.version != protocol.PROTOCOL_VERSION:
            # A supervisor of another release (an upgrade): ours takes over from it (supervisor.py).
            self._start_supervisor(take_over_from=running.pid)
        self._subscribe()
        self._image_gc_stop.clear()
        threading.Thread(target=self._image_gc_loop, name="image-gc", daemon=True).start()

    def _image_gc_loop(self, interval: float = 300) -> None:
        high, low = self.image_gc_percent
        while not self._image_gc_stop.wait(interval):
            try:
                removed, freed = self.images.collect_garbage(high, low)
            except Exception:  # a broken store must not end the loop: logged, tried again later
                log.exception("image garbage collection failed")
                continue
            if removed:
                log.info("image garbage collection removed %d images, %d bytes", len(removed), freed)

    def _start_supervisor(self, take_over_from: int | None = None) -> None:
        """Launch the supervisor detached; it signals readiness by writing one line on a pipe."""
        ready_read, ready_write = os.pipe()
        take_over = ["--take-over-from", str(take_over_from)] if take_over_from else []
        command, environment = python_module_command("minikube_py.runtime.supervisor", "--home", self.home,
                                                     "--ready-fd", str(ready_write), *take_over)
        try:
            launcher = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                close_fds=True, pass_fds=(ready_write,), start_new_session=True, cwd="/", env=environment,
            )
        finally:
            os.close(ready_write)
        try:
            launcher.wait(timeout=SUPERVISOR_START_TIMEOUT)  # the first fork exits at once
            ready, _, _ = select.select([ready_read], [], [], SUPERVISOR_START_TIMEOUT)
            answer = os.read(ready_read, 64) if ready else b""
        finally:
            os.close(ready_read)
        pong = self.supervisor.ping()  # not ready but alive: another start won the race
        if not answer.startswith(b"ready") and (pong is None or pong.version != protocol.PROTOCOL_VERSION):
            raise ContainerRuntimeError(
                "RuntimeNotReady",
                f"the supervisor did not start within {SUPERVISOR_START_TIMEOUT:.0f}s; see {self.home}/supervisor.log",
            )

    def _subscribe(self) -> None:
        with self._subscription_lock:
            if self._subscription is not None:
                self._subscription.close()
            try:
                sock = self.supervisor.connect()
            except OSError as error:
                raise ContainerRuntimeError("RuntimeNotReady", f"supervisor at {self.supervisor.path}: {error}") from error
            sock.sendall(protocol.encode_request(protocol.Subscribe()))
            self._subscription, self._subscription_buffer = sock, b""
            self._read_subscription_line(timeout=10.0)  # the {"ok": true} of the subscription

    def _read_subscription_line(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._subscription_buffer:
            remaining = max(0.0, deadline - time.monotonic())
            if not select.select([self._subscription], [], [], remaining)[0]:
                return None
            chunk = self._subscription.recv(65536)
            if not chunk:
                raise ConnectionError("the supervisor closed the event subscription")
            self._subscription_buffer += chunk
        line, self._subscription_buffer = self._subscription_buffer.split(b"\n", 1)
        return line

    # ---- images

    def image_config(self, reference: str) -> ResolvedImage:
        return self._resolved(reference, self.images.resolve(reference))

    def _resolved(self, reference: str, image) -> ResolvedImage:
        user = image.config.user
        if user:
            try:
                user = "%d:%d" % resolve_user(image.layers, user)
            except ContainerRuntimeError:
                pass  # left as the image wrote it: the agent reports it unless the pod sets runAsUser
        return ResolvedImage(
            reference=reference, id=image.repo_digest, entrypoint=list(image.config.entrypoint), cmd=list(image.config.cmd),
            env=[tuple(item.split("=", 1)) if "=" in item else (item, "") for item in image.config.env],
            working_dir=image.config.working_dir, user=user, from_registry=bool(image.repo_digests), size=image.size,
            stop_signal=image.config.stop_signal,
        )

    def pull_image(self, reference: str, docker_configs: list[tuple[str, bytes]]) -> PulledImage:
        keyring = Keyring()
        try:
            for where, document in docker_configs:
                keyring.add_docker_config(document, where)
            result = self.puller().pull(reference, keyring)
        except (AuthConfigError, RegistriesConfigError) as error:
            raise ContainerRuntimeError("ErrImagePull", f'failed to pull and unpack image "{reference}": {error}') from None
        except PullError as error:
            raise ContainerRuntimeError("ErrImagePull", error.message) from None
        return PulledImage(self._resolved(reference, result.image), result.seconds, result.downloaded)

    def puller(self) -> Puller:
        """The node's puller; made again when registries.yaml changes, so edits apply to the next pull."""
        path = os.path.join(self.home, "registries.yaml")
        try:
            info = os.stat(path)
            stamp: tuple[float, int] | None = (info.st_mtime, info.st_size)
        except FileNotFoundError:
            stamp = None
        with self._puller_lock:
            if self._puller is None or stamp != self._registries_stamp:
                if self._puller is not None:
                    self._puller.client.close()
                self._puller = Puller(self.images, RegistryClient(RegistryHosts.load(self.home)))
                self._registries_stamp = stamp
            return self._puller

    # ---- sandboxes

    def create_sandbox(self, config: SandboxConfig) -> Sandbox:
        pod_cgroup = f"{self.cgroup_parent}/pod-{config.pod_uid}"
        # The pause gets a leaf of its own: on cgroup v2 a cgroup with controlled children holds no processes.
        pause_cgroup = f"{pod_cgroup}/pause"
        try:
            self.cgroups.create(pod_cgroup, config.limits)
            self.cgroups.create(pause_cgroup)
            spec = SandboxSpec(id=config.pod_uid, hostname=config.hostname,
                               share_process_namespace=config.share_process_namespace,
                               pause_binary=self.pause_binary or ensure_pause_binary(self.home),
                               cgroup_dirs=self._cgroup_dirs(pause_cgroup))
            answer = self.supervisor.call(protocol.CreateSandbox(spec, pod_name=config.pod_name, namespace=config.namespace,
                                                                 ip=config.ip, cgroup=pod_cgroup))
        except ContainerRuntimeError as error:
            self._remove_cgroup_quietly(pod_cgroup)
            raise ContainerRuntimeError("CreatePodSandboxError", f"pod {config.namespace}/{config.pod_name}: {error.message}") from error
        except OSError as error:
            self._remove_cgroup_quietly(pod_cgroup)
            raise ContainerRuntimeError("CreatePodSandboxError", f"pod {config.namespace}/{config.pod_name}: {error}") from error
        sandbox = sandbox_from_record(answer.sandbox)
        try:
            sandbox.host_veth = self.network.attach(config.pod_uid, sandbox.pause_pid, config.ip,
                                                    f"{config.namespace}/{config.pod_name}")
            self.supervisor.call(protocol.SetSandboxVeth(sandbox.id, sandbox.host_veth))
        except BaseException:
            self.remove_sandbox(sandbox)
            raise
        return sandbox

    def sandbox_alive(self, sandbox: Sandbox) -> bool:
        return process_alive(sandbox.pause_pid, sandbox.pause_start_time)

    def check_sandbox_network(self, sandbox: Sandbox) -> str:
        try:
            return self.network.check(sandbox.host_veth, sandbox.pause_pid, sandbox.ip)
        except Exception as error:  # a namespace that vanished under us, a netlink error: broken either way
            return f"checking the network failed: {error}"

    def mount_memory_volume(self, path: str, size_bytes: int | None = None) -> None:
        memory_volumes.mount_memory_volume(path, size_bytes)

    def unmount_memory_volume(self, path: str) -> None:
        memory_volumes.unmount_memory_volume(path)

    def remove_sandbox(self, sandbox: Sandbox) -> None:
        for state in self.list_containers(sandbox.id):
            self.remove_container(state.id)
        if self.sandbox_alive(sandbox):
            self.supervisor.call(protocol.Signal(protocol.SignalTarget.SANDBOX, sandbox.id, signal.SIGKILL))
        self._remove_cgroup_quietly(sandbox.cgroup, raise_errors=True)  # waits until the pod's processes are gone
        if sandbox.host_veth:
            # Nothing of the pod runs in its network namespace any more: the kernel takes the veth
            # pair away with it (PodNetwork.release_with_namespace).
            self.network.release_with_namespace(sandbox.host_veth)
        self.supervisor.call(protocol.RemoveSandboxes([sandbox.id]))

    def list_sandboxes(self) -> list[Sandbox]:
        answer = self.supervisor.call(protocol.ListRecords(running_sandboxes_only=True))
        return [sandbox_from_record(record) for record in answer.sandboxes]

    # ---- containers

    def start_container(self, sandbox: Sandbox, config: ContainerConfig) -> ContainerState:
        if not self.sandbox_alive(sandbox):
            raise ContainerRuntimeError("CreateContainerError", f"sandbox {sandbox.id} of pod {sandbox.namespace}/{sandbox.pod_name} "
                                "is not running; the pod's sandbox must be recreated")
        if not config.argv:
            raise ContainerRuntimeError("CreateContainerError", f"container {config.name}: no command given and the image has none")
        image = self.images.resolve(config.image)
        self.images.mark_used(image.id)
        container_id = container_id_for(sandbox.id, config.name, config.attempt)
        cgroup = f"{sandbox.cgroup}/{container_id}"
        namespaces = [[kind, sandbox.namespace_path(kind)] for kind in SANDBOX_NAMESPACES]
        if sandbox.share_process_namespace:
            namespaces.append(["pid", sandbox.namespace_path("pid")])
        elif config.target_container_id:
            target = self._record(config.target_container_id)
            if target.status != ContainerStatus.RUNNING or not process_alive(target.pid, target.start_time):
                raise ContainerRuntimeError("CreateContainerError", f"container {config.name}: its target container "
                                            f"{target.name} is not running")
            namespaces.append(["pid", f"/proc/{target.pid}/ns/pid"])
        spec = ContainerSpec(
            id=container_id, sandbox_id=sandbox.id, name=config.name, attempt=config.attempt, image=image.reference,
            directory=os.path.join(self.containers_dir, container_id), layers=list(image.layers),
            argv=list(config.argv), env=[[name, value] for name, value in config.env], working_dir=config.working_dir or "/",
            uid=config.uid, gid=config.gid, namespaces=namespaces,
            new_pid_namespace=not sandbox.share_process_namespace and not config.target_container_id,
            mounts=[mount.__dict__ for mount in config.mounts], cgroup_dirs=self._cgroup_dirs(cgroup), cgroup=cgroup,
            log_path=config.log_path, log_max_bytes=config.log_max_bytes, log_max_files=config.log_max_files,
            stdin=config.stdin or config.tty, tty=config.tty, **security_fields(config, self.seccomp_programs),
        )
        try:
            # A limit the kernel refuses fails after the directory exists: remove it on every failure.
            self.cgroups.create(cgroup, config.limits)
            self.cgroups.set_devices(cgroup, devices.rules_for(config.devices, config.privileged))
            answer = self.supervisor.request(protocol.StartContainer(spec))
        except OSError as error:
            self._remove_cgroup_quietly(cgroup)
            raise ContainerRuntimeError("CreateContainerError", f"container {config.name}: cgroup {cgroup}: {error}") from error
        except BaseException:
            self._remove_cgroup_quietly(cgroup)
            raise
        if isinstance(answer, protocol.ErrorReply):
            self._remove_cgroup_quietly(cgroup)
            raise ContainerRuntimeError(answer.reason, answer.message)
        return state_from_record(answer.container)

    def _record(self, container_id: str) -> ContainerRecord:
        record = protocol.load_container_record(os.path.join(self.containers_dir, container_id, "state.json"))
        if record is None:
            raise ContainerRuntimeError("ContainerStatusUnknown", f"container {container_id} not found in {self.containers_dir}")
        return record

    def container_state(self, container_id: str) -> ContainerState:
        return state_from_record(self._record(container_id))

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerState]:
        answer = self.supervisor.call(protocol.ListRecords(sandbox_id=sandbox_id))
        return [state_from_record(record) for record in answer.containers]

    def wait_any(self, timeout: float) -> list[ContainerState]:
        exited: list[ContainerState] = []
        with self._subscription_lock:
            if self._subscription is None:
                raise ContainerRuntimeError("RuntimeNotReady", "wait_any before start(): the runtime has no event subscription")
            try:
                line = self._read_subscription_line(timeout)
                while line is not None:
                    event = protocol.decode_event(line)
                    if isinstance(event, protocol.ContainerExited):
                        exited.append(state_from_record(event.container))
                    else:
                        exited.append(sandbox_exit_state(event.sandbox))
                    line = self._read_subscription_line(0)
            except (ConnectionError, OSError):
                self._subscription.close()
                self._subscription = None
        if self._subscription is None:
            # The supervisor went away: start a new one (it re-adopts the running containers from
            # their records) and subscribe again; exits in between are in list_containers().
            if not self.supervisor.alive():
                self._start_supervisor()
            self._subscribe()
        self.network.sweep_released()  # the exit watcher calls this every second or so
        return exited

    def stop_container(self, container_id: str, grace_seconds: float) -> ContainerState:
        record = self._record(container_id)
        if record.status == ContainerStatus.RUNNING:
            if grace_seconds > 0:
                self._signal(container_id, signal.SIGTERM)
                record = self._wait_exit(container_id, grace_seconds)
            if record.status == ContainerStatus.RUNNING:
                self._signal(container_id, signal.SIGKILL)
                self.cgroups.kill_all(record.cgroup)
                record = self._wait_exit(container_id, KILL_WAIT_SECONDS)
        if record.cgroup:
            self.cgroups.kill_all(record.cgroup)  # leftovers of a shared PID namespace outlive PID 1
        return state_from_record(record)

    def kill_container(self, container_id: str, signal_number: int) -> None:
        self._signal(container_id, signal_number)
        if signal_number == signal.SIGKILL:
            cgroup = self._record(container_id).cgroup
            if cgroup:
                self.cgroups.kill_all(cgroup)

    def _signal(self, container_id: str, number: int) -> None:
        self.supervisor.call(protocol.Signal(protocol.SignalTarget.CONTAINER, container_id, int(number)))

    def _wait_exit(self, container_id: str, timeout: float) -> ContainerRecord:
        answer = self.supervisor.call(protocol.WaitExit(container_id, timeout), timeout=timeout + 30)
        return answer.container or self._record(container_id)

    def remove_container(self, container_id: str) -> None:
        try:
            record = self._record(container_id)
        except ContainerRuntimeError:
            return
        if record.status == ContainerStatus.RUNNING:
            self.stop_container(container_id, 0)
        self.supervisor.call(protocol.RemoveContainer(container_id))
        # The supervisor moved the directory aside; deleting it is this thread's work, not its loop's.
        shutil.rmtree(os.path.join(self.containers_dir, protocol.REMOVED_CONTAINER_PREFIX + container_id), ignore_errors=True)
        if record.cgroup:
            self._remove_cgroup_quietly(record.cgroup, raise_errors=True)

    # ---- exec

    def _nsexec_command(self, container_id: str, argv: list[str], tty: bool,
                        console_fd: int | None = None) -> tuple[list[str], dict[str, str]]:
        record = self._record(container_id)
        spec = record.spec
        if record.status != ContainerStatus.RUNNING or spec is None or not process_alive(record.pid, record.start_time):
            raise ContainerRuntimeError("ContainerNotRunning", f"container {record.name} ({container_id}) is not running")
        arguments = ["--pid", str(record.pid), "--start-time", str(record.start_time), "--uid", str(spec.uid),
                     "--gid", str(spec.gid), "--cwd", spec.working_dir]
        # An exec is confined like the container: its groups, capabilities, no_new_privs and seccomp filter.
        for group in spec.supplemental_groups:
            arguments += ["--group", str(group)]
        if spec.capabilities is not None:
            arguments += ["--capabilities", ",".join(str(number) for number in spec.capabilities)]
        if not spec.no_new_privileges:
            arguments.append("--allow-privilege-escalation")
        if spec.seccomp_program:
            arguments += ["--seccomp-program", spec.seccomp_program]
        for directory in spec.cgroup_dirs:
            arguments += ["--cgroup-dir", directory]
        if console_fd is not None:
            arguments += ["--console-socket", str(console_fd)]
        arguments += (["--tty"] if tty else []) + ["--", *argv]
        return python_module_command("minikube_py.runtime.nsexec", *arguments)

    def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        command, environment = self._nsexec_command(container_id, argv, tty=False)
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=environment)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            process.terminate()  # nsexec kills and reaps the command
            # Not communicate() again: a process the command left in the background may hold
            # the pipes open for as long as it runs, and the caller was promised `timeout`.
            try:
                process.wait(timeout=KILL_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
            process.stderr.close()
            raise ContainerRuntimeError("DeadlineExceeded", f"command {argv} in container {container_id} "
                                f"did not finish within {timeout:g}s") from error
        code = process.returncode
        return ExecResult(code if code >= 0 else 128 - code, stdout, stderr)

    def exec_stream(self, container_id: str, argv: list[str], tty: bool = False) -> ProcessExecSession:
        if not tty:
            return ProcessExecSession(*self._nsexec_command(container_id, argv, tty=False))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            command, environment = self._nsexec_command(container_id, argv, tty=True, console_fd=theirs.fileno())
            return ProcessExecSession(command, environment, ours, theirs.fileno())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()

    # ---- attach

    def open_container_input(self, container_id: str) -> ContainerInput | None:
        """Where attach writes: a copy of a TTY container's master (from its monitor, through a
        pidfd) or the write side of a `stdin: true` container's stdin pipe; None without stdin."""
        record = self._record(container_id)
        spec = record.spec
        if record.status != ContainerStatus.RUNNING or spec is None or not process_alive(record.pid, record.start_time):
            raise ContainerRuntimeError("ContainerNotRunning", f"container {record.name} ({container_id}) is not running")
        if spec.tty:
            if not process_alive(record.monitor_pid, record.monitor_start_time):
                raise ContainerRuntimeError("ContainerNotRunning", f"container {record.name} has no monitor holding its terminal")
            pidfd = os.pidfd_open(record.monitor_pid)
            try:
                return ContainerInput(linux.pidfd_getfd(pidfd, monitor.STDOUT_FD), tty=True)
            finally:
                os.close(pidfd)
        if spec.stdin:
            # A pipe reopened through /proc is the same pipe: this is a new write end of it.
            return ContainerInput(os.open(f"/proc/{record.pid}/fd/0", os.O_WRONLY | os.O_CLOEXEC), tty=False)
        return None

    def close_container_stdin(self, container_id: str) -> None:
        """End a `stdin: true` container's input for good (stdinOnce): its monitor drops the write end
        it holds, so the container reads end of file once attached writers are gone too."""
        record = self._record(container_id)
        if record.spec is not None and record.spec.stdin and not record.spec.tty and \
                process_alive(record.monitor_pid, record.monitor_start_time):
            os.kill(record.monitor_pid, signal.SIGUSR1)

    # ---- port-forward

    def connect_in_sandbox(self, sandbox: Sandbox, port: int, timeout: float) -> socket.socket:
        """A TCP connection to localhost:port inside the pod's network namespace (what kubelet's
        port-forward dials): the socket is made by a short-lived thread that joins the namespace
        (setns is per thread, so the daemon's other threads stay where they are), then connected
        here. IPv4 first, then IPv6, as the kubelet tries them."""
        if not self.sandbox_alive(sandbox):
            raise ContainerRuntimeError("SandboxNotRunning", f"the pod's sandbox (pause pid {sandbox.pause_pid}) is not running")
        errors: list[str] = []
        for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            sock = _socket_in_namespace(f"/proc/{sandbox.pause_pid}/ns/net", family)
            sock.settimeout(timeout)
            try:
                sock.connect((address, port))
            except OSError as error:
                sock.close()
                errors.append(f"{address}: {error.strerror or error}")
                continue
            sock.settimeout(None)
            return sock
        raise ContainerRuntimeError("PortForwardFailed", f"failed to connect to localhost:{port} inside the pod's "
                                    f"network namespace: {'; '.join(errors)}")

    # ---- inspect

    def inspect(self, sandbox: Sandbox, container_ids: dict[str, str]) -> dict:
        pause_namespaces = namespace_inodes(sandbox.pause_pid) if self.sandbox_alive(sandbox) else {}
        document = {
            "pod": {"ip": sandbox.ip, "hostVeth": sandbox.host_veth, "bridge": self.network.bridge_name,
                    "cgroup": sandbox.cgroup},
            "pause": {"pid": sandbox.pause_pid if pause_namespaces else 0, "namespaces": pause_namespaces,
                      "cgroups": self.cgroups.absolute_paths(f"{sandbox.cgroup}/pause"),
                      "podLimits": self._read_limits(sandbox.cgroup)},
            "containers": [],
        }
        for name, container_id in container_ids.items():
            try:
                record = self._record(container_id)
            except ContainerRuntimeError:
                continue
            running = record.status == ContainerStatus.RUNNING and process_alive(record.pid, record.start_time)
            namespaces = namespace_inodes(record.pid) if running else {}
            document["containers"].append({
                "name": name, "id": container_id, "pid": record.pid if running else 0,
                "state": state_from_record(record).status,
                "namespaces": namespaces,
                "sharedWithPause": sorted(kind for kind, inode in namespaces.items() if pause_namespaces.get(kind) == inode),
                "cgroups": self.cgroups.absolute_paths(record.cgroup),
                "limits": self._read_limits(record.cgroup),
                "rootfs": os.path.join(record.directory, "rootfs"),
                "image": record.spec.image if record.spec is not None else "",
                # The overlay's lower directories as mounted, top first: layers shared between images show here.
                "imageLayers": list(reversed(record.spec.layers)) if record.spec is not None else [],
                "security": container_security(record.spec, record.pid if running else 0),
            })
        return document

    def container_usage(self, sandbox: Sandbox, container_id: str) -> ResourceUsage | None:
        try:
            return self.cgroups.read_usage(f"{sandbox.cgroup}/{container_id}")
        except OSError:
            return None

    def node_usage(self) -> ResourceUsage | None:
        try:
            return self.cgroups.read_usage(self.cgroup_parent)
        except OSError:
            return None

    def _read_limits(self, cgroup: str) -> dict:
        try:
            return self.cgroups.read_limits(cgroup)
        except OSError:
            return {}

    # ---- shutdown

    def shutdown(self, remove_all: bool) -> None:
        self._image_gc_stop.set()
        with self._subscription_lock:
            if self._subscription is not None:
                self._subscription.close()
                self._subscription = None
        if not remove_all:
            return  # containers keep running under the supervisor; the next start re-adopts them
        # The node goes as a whole: one kill of the cluster's cgroup subtree (every pause and
        # container at once, cgroup.kill on v2), not a stop and a removal per pod and container.
        # The records go with the home's directories below.
        self.cgroups.kill_all(self.cgroup_parent)
        self._remove_cgroup_quietly(self.cgroup_parent, raise_errors=True)  # waits until they are gone
        self._wait_for_monitors()  # each ends once its container has
        # Secret and projected volumes of pods left mounted (the agent unmounts them with each
        # sandbox; a daemon killed with -9 does not).
        memory_volumes.unmount_all_under(os.path.join(self.home, "pods"))
        if self.supervisor.alive():
            self._stop_supervisor()
        for host_veth in self.network.list_veths():
            self.network.detach(host_veth)
        self.network.remove_bridge()
        disable_fast_attach(self.home)
        remove_trees_in_parallel([os.path.join(self.home, directory) for directory in ("containers", "sandboxes")])

    def _wait_for_monitors(self, timeout: float = KILL_WAIT_SECONDS) -> None:
        """Wait until no container monitor of this home runs (found in /proc by its binary)."""
        prefix = os.path.join(self.home, "bin", "monitor-")
        deadline = time.monotonic() + timeout
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if not os.readlink(f"/proc/{entry}/exe").startswith(prefix):
                    continue
                pidfd = os.pidfd_open(int(entry))
            except OSError:
                continue
            try:
                select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
            finally:
                os.close(pidfd)

    def _stop_supervisor(self) -> None:
        pid = self.supervisor.call(protocol.Ping()).pid
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            self.supervisor.call(protocol.Shutdown())
            if not select.select([pidfd], [], [], SUPERVISOR_STOP_TIMEOUT)[0]:
                os.kill(pid, signal.SIGKILL)
                select.select([pidfd], [], [], SUPERVISOR_STOP_TIMEOUT)
        finally:
            os.close(pidfd)

    # ---- helpers

    def _cgroup_dirs(self, cgroup: str) -> list[str]:
        return sorted(set(self.cgroups.absolute_paths(cgroup).values()))

    def _remove_cgroup_quietly(self, cgroup: str, raise_errors: bool = False) -> None:
        try:
            self.cgroups.remove(cgroup)
        except (OSError, ContainerRuntimeError):
            if raise_errors:
                raise
