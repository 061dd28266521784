"""The per-node supervisor: parent of every pause process and container, so a daemon restart loses nothing.

One small long-lived Python process per cluster, started detached by `LinuxRuntime.start()`. It
forks pause processes and containers (see container.py for the child's side, monitor.py for the
container's monitor), reaps pause processes as a child subreaper, and records each exit in
`containers/<id>/state.json`. It is single-threaded (one
selectors loop), which keeps fork safe, and speaks the typed, versioned protocol of protocol.py
on `supervisor.sock`: one request per line, dispatched through `Supervisor.handlers` (request
type -> handler), one reply each; a `Subscribe` connection then receives exit events, and
`WaitExit` answers when a container exits or its timeout passes.

Taking over: started with `--take-over-from PID`, it first asks that supervisor (of another
release) to shut down, waits for it to exit, then serves the same records (see
docs/architecture.md, "Upgrades").

Logs and exit codes do not depend on this process: each container has a monitor (monitor.py,
monitor.c) that holds its pipes, writes its log and records its exit status in
`containers/<id>/exit`. The supervisor follows containers through pidfds and reads that file, so
after a restart (or `kill -9`) a new supervisor picks up exactly where the old one was. Only a
container whose monitor vanished too is recorded as unknown (137, ContainerStatusUnknown, as the
kubelet does for a vanished container).

It stays one module of about 800 lines: one single-threaded process whose handlers share its
event loop's state; the wire types live in protocol.py and the monitor in monitor.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import fcntl
import json
import logging
import os
import resource
import select
import selectors
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from minikube_py.runtime import linux, monitor, protocol
from minikube_py.runtime.cgroups import CgroupDriver
from minikube_py.runtime.container import run_sandbox_child
from minikube_py.runtime.monitor import run_monitored_container
from minikube_py.runtime.protocol import ContainerRecord, ContainerStatus, SandboxRecord, SandboxStatus
from minikube_py.runtime.types import ContainerRuntimeError

log = logging.getLogger("minikube_py.supervisor")

SETUP_TIMEOUT_SECONDS = 30.0  # a child that has not exec'd by then is killed
TAKEOVER_TIMEOUT_SECONDS = 10.0  # an old supervisor asked to shut down is killed after this
MAX_OUTBOX_BYTES = 8 * 1024 * 1024
EXIT_FILE_WAIT_SECONDS = 5.0  # after a container ends, how long its monitor may take to record the status
EXIT_FILE_POLL_SECONDS = 0.01


def socket_path(home: str) -> str:
    return os.path.join(home, "supervisor.sock")


def pid_path(home: str) -> str:
    return os.path.join(home, "supervisor.pid")


# ---- records ---------------------------------------------------------------------------------------


def exit_status(wait_status: int) -> tuple[int, int | None]:
    """(exit code, signal) the way container runtimes report them: killed by N -> 128 + N."""
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        return 128 + number, number
    return os.WEXITSTATUS(wait_status), None


def process_alive(pid: int, start_time: int) -> bool:
    """The process with this pid and start time still exists (a reused pid does not count)."""
    try:
        return pid > 0 and linux.process_start_time(pid) == start_time
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return False


def start_time_or_zero(pid: int) -> int:
    try:
        return linux.process_start_time(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0  # it already exited; its pidfd or the reaper records that right after


def _status_messages(received: bytes) -> list[dict]:
    return [json.loads(line) for line in received.decode(errors="replace").splitlines() if line.strip()]


@dataclass
class Connection:
    sock: socket.socket
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    subscribed: bool = False
    closed: bool = False


@dataclass
class ExitWaiter:
    connection: Connection
    container_id: str
    deadline: float


class Supervisor:
    """The loop, the records and the children of one node; `serve()` runs until shutdown or SIGTERM."""

    def __init__(self, home: str, cgroups: CgroupDriver | None = None):
        self.home = home
        self.containers_dir = os.path.join(home, "containers")
        self.sandboxes_dir = os.path.join(home, "sandboxes")
        os.makedirs(self.containers_dir, exist_ok=True)
        os.makedirs(self.sandboxes_dir, exist_ok=True)
        self._cgroups = cgroups
        self.last_cap = linux.last_capability()
        self.selector = selectors.DefaultSelector()
        self.containers: dict[str, ContainerRecord] = {}
        self.sandboxes: dict[str, SandboxRecord] = {}
        self.containers_of_sandbox: dict[str, set[str]] = {}  # the index `ListRecords(sandbox_id)` answers from
        self.children: dict[int, tuple[str, str]] = {}  # pid -> ("container" | "sandbox", id)
        self.monitor_binary = ""
        self.pending_exits: dict[str, float] = {}  # container id -> deadline for its monitor's exit record
        self.waiters: list[ExitWaiter] = []
        self.running = True
        self.listener: socket.socket | None = None
        # One typed handler per request; a handler returning None answers later (WaitExit).
        self.handlers: dict[type[protocol.Request], Callable[[Connection, Any], protocol.Reply | None]] = {
            protocol.Ping: self.ping,
            protocol.CreateSandbox: self.create_sandbox,
            protocol.SetSandboxVeth: self.set_sandbox_veth,
            protocol.RemoveSandboxes: self.remove_sandboxes,
            protocol.StartContainer: self.start_container,
            protocol.Signal: self.signal,
            protocol.WaitExit: self.wait_exit,
            protocol.RemoveContainer: self.remove_container,
            protocol.ListRecords: self.list_records,
            protocol.Subscribe: self.subscribe,
            protocol.Shutdown: self.shutdown,
        }

    @property
    def cgroups(self) -> CgroupDriver:
        """Detected on first use: only OOM accounting needs it, and that only on a real node."""
        if self._cgroups is None:
            self._cgroups = CgroupDriver.detect()
        return self._cgroups

    # ---- start-up

    def serve(self, ready_fd: int | None = None) -> None:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        wakeup_read, wakeup_write = socket.socketpair()
        wakeup_read.setblocking(False)
        wakeup_write.setblocking(False)
        signal.set_wakeup_fd(wakeup_write.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda number, frame: None)
        signal.signal(signal.SIGTERM, self._stop_on_signal)
        signal.signal(signal.SIGINT, self._stop_on_signal)
        self.selector.register(wakeup_read, selectors.EVENT_READ, ("wakeup", None))
        self.monitor_binary = monitor.ensure_monitor_binary(self.home)
        self.load_records()
        self.listener = self._listen()
        self.selector.register(self.listener, selectors.EVENT_READ, ("accept", None))
        log.info("supervisor %d serving protocol version %d on %s", os.getpid(), protocol.PROTOCOL_VERSION,
                 socket_path(self.home))
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        self.reap()  # children that exited before the handler was installed
        while self.running:
            for key, events in self.selector.select(self._select_timeout()):
                try:
                    self._dispatch(key, events)
                except Exception:  # one failed event must not end the node's bookkeeping
                    log.exception("handling %s failed", key.data[0])
            self._expire_waiters()
            self._check_pending_exits()
        self._close()

    def _dispatch(self, key: selectors.SelectorKey, events: int) -> None:
        current = self.selector.get_map().get(key.fd)
        if current is None or current.data is not key.data:
            return  # closed (or its number reused) by an earlier event of the same batch
        kind, target = key.data
        if kind == "wakeup":
            self._drain(key.fileobj)
            self.reap()
        elif kind == "accept":
            self._accept()
        elif kind == "client":
            self._client_ready(target, events)
        elif kind == "pidfd":
            self._adopted_exited(key.fd, target)

    def _stop_on_signal(self, number, frame) -> None:
        self.running = False

    def _listen(self) -> socket.socket:
        path = socket_path(self.home)
        if os.path.exists(path):
            os.unlink(path)  # stale: the pid-file lock proved no other supervisor runs
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
        listener.listen(64)
        listener.setblocking(False)
        return listener

    def _close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            try:
                os.unlink(socket_path(self.home))
            except FileNotFoundError:
                pass
        log.info("supervisor %d stopped", os.getpid())

    def load_records(self) -> None:
        """After a restart or a takeover: read (and upgrade) the records, follow live processes through pidfds."""
        for entry in sorted(os.listdir(self.sandboxes_dir)):
            if not entry.endswith(".json"):
                continue
            sandbox = self._load(protocol.load_sandbox_record, os.path.join(self.sandboxes_dir, entry))
            if sandbox is not None:
                self.sandboxes[sandbox.id] = sandbox
                self._save_sandbox(sandbox)  # in this release's shape from now on
                if sandbox.status == SandboxStatus.RUNNING:
                    self._follow_adopted(sandbox.pid, sandbox.start_time, "sandbox", sandbox.id)
        for entry in sorted(os.listdir(self.containers_dir)):
            if entry.startswith(protocol.REMOVED_CONTAINER_PREFIX):
                shutil.rmtree(os.path.join(self.containers_dir, entry), ignore_errors=True)
                continue
            container = self._load(protocol.load_container_record, self._container_file(entry))
            if container is None:
                continue
            self._index(container)
            self._save_container(container)  # in this release's shape from now on
            if container.status == ContainerStatus.RUNNING:
                self._follow_adopted(container.pid, container.start_time, "container", container.id)

    @staticmethod
    def _load(loader, path: str):
        try:
            return loader(path)
        except ContainerRuntimeError as error:
            log.error("ignoring the record %s: %s", path, error.message)
            return None

    def _index(self, container: ContainerRecord) -> None:
        self.containers[container.id] = container
        self.containers_of_sandbox.setdefault(container.sandbox_id, set()).add(container.id)

    def _unindex(self, container_id: str) -> None:
        container = self.containers.pop(container_id, None)
        if container is not None:
            siblings = self.containers_of_sandbox.get(container.sandbox_id, set())
            siblings.discard(container_id)
            if not siblings:
                self.containers_of_sandbox.pop(container.sandbox_id, None)

    def _follow_adopted(self, pid: int, start_time: int, kind: str, record_id: str) -> None:
        if process_alive(pid, start_time):
            self._follow(pid, kind, record_id)
        else:
            self._vanished(kind, record_id)

    def _follow(self, pid: int, kind: str, record_id: str) -> None:
        """A pidfd tells when the process ends, whoever its parent is (the monitor, or nobody we know)."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._vanished(kind, record_id)
            return
        self.selector.register(pidfd, selectors.EVENT_READ, ("pidfd", (kind, record_id)))

    def _adopted_exited(self, pidfd: int, target: tuple[str, str]) -> None:
        self.selector.unregister(pidfd)
        os.close(pidfd)
        self._vanished(*target)

    def _vanished(self, kind: str, record_id: str) -> None:
        if kind == "sandbox":
            self._sandbox_exited(record_id)
            return
        self._container_ended(record_id)

    def _container_ended(self, container_id: str) -> None:
        """The container's process is gone: take its status from the monitor's exit file, or wait for it."""
        container = self.containers.get(container_id)
        if container is None or container.status != ContainerStatus.RUNNING:
            return
        if container.monitor_pid:
            status = monitor.read_exit_status(monitor.exit_file(container.directory), container.pid)
            if status is not None:
                self.pending_exits.pop(container_id, None)
                self._container_exited(container_id, *exit_status(status))
                return
            monitor_alive = process_alive(container.monitor_pid, container.monitor_start_time)
            if monitor_alive and container_id not in self.pending_exits:
                self.pending_exits[container_id] = time.monotonic() + EXIT_FILE_WAIT_SECONDS
            if monitor_alive and self.pending_exits[container_id] > time.monotonic():
                return  # the monitor reaps it and records the status in a moment
        self.pending_exits.pop(container_id, None)
        self._status_unknown(container)

    def _check_pending_exits(self) -> None:
        for container_id in list(self.pending_exits):
            self._container_ended(container_id)

    def _status_unknown(self, container: ContainerRecord) -> None:
        container.transition(ContainerStatus.UNKNOWN, exit_code=protocol.UNKNOWN_EXIT_CODE, finished_at=time.time(),
                             reason=protocol.UNKNOWN_EXIT_REASON,
                             message="the container's process is gone and no monitor recorded its exit code")
        self._save_container(container)
        self._announce(container)

    # ---- records on disk

    def _container_file(self, container_id: str) -> str:
        return os.path.join(self.containers_dir, container_id, "state.json")

    def _save_container(self, container: ContainerRecord) -> None:
        protocol.write_record(self._container_file(container.id), container)

    def _save_sandbox(self, sandbox: SandboxRecord) -> None:
        protocol.write_record(os.path.join(self.sandboxes_dir, f"{sandbox.id}.json"), sandbox)

    # ---- reaping

    def reap(self) -> None:
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            owner = self.children.pop(pid, None)
            if owner is None:
                continue  # an intermediate of a start, or an orphan reparented to us
            kind, record_id = owner
            if kind == "sandbox":
                self._sandbox_exited(record_id)
            elif kind == "monitor":
                self._container_ended(record_id)  # its record is written by now, or never will be
            else:
                self._container_exited(record_id, *exit_status(wait_status))

    def _sandbox_exited(self, sandbox_id: str) -> None:
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is not None and sandbox.status == SandboxStatus.RUNNING:
            sandbox.status, sandbox.finished_at = SandboxStatus.EXITED, time.time()
            self._save_sandbox(sandbox)
            # A dead pause takes the pod's namespaces with it: the agent must hear of it at once.
            self._broadcast(protocol.SandboxExited(sandbox))

    def _container_exited(self, container_id: str, exit_code: int, signal_number: int | None) -> None:
        container = self.containers.get(container_id)
        if container is None or container.status != ContainerStatus.RUNNING:
            return
        # Each container attempt has its own cgroup: any OOM kill in it (the main process or one of
        # its children, such as `head` in `sh -c "head ... | tail"`) makes the exit OOMKilled, as containerd reports it.
        oom_killed = False
        if (signal_number is not None or exit_code != 0) and container.cgroup:
            try:
                oom_killed = self.cgroups.oom_kill_count(container.cgroup) > 0
            except (OSError, ContainerRuntimeError):
                oom_killed = False
        reason = "OOMKilled" if oom_killed else "Completed" if exit_code == 0 else "Error"
        container.transition(ContainerStatus.EXITED, exit_code=exit_code, signal=signal_number, oom_killed=oom_killed,
                             finished_at=time.time(), reason=reason, message="")
        self._save_container(container)
        self._announce(container)

    def _broadcast(self, event: protocol.Event) -> None:
        message = protocol.encode_event(event)
        for key in list(self.selector.get_map().values()):
            kind, connection = key.data
            if kind == "client" and connection.subscribed:
                self._send(connection, message)

    def _announce(self, container: ContainerRecord) -> None:
        self._broadcast(protocol.ContainerExited(dataclasses.replace(container, spec=None)))
        for waiter in [waiter for waiter in self.waiters if waiter.container_id == container.id]:
            self.waiters.remove(waiter)
            self._send(waiter.connection, protocol.encode_reply(protocol.ContainerReply(container)))

    def _select_timeout(self) -> float | None:
        if self.pending_exits:
            return EXIT_FILE_POLL_SECONDS
        if not self.waiters:
            return None
        return max(0.0, min(waiter.deadline for waiter in self.waiters) - time.monotonic())

    def _expire_waiters(self) -> None:
        now = time.monotonic()
        for waiter in [waiter for waiter in self.waiters if waiter.deadline <= now]:
            self.waiters.remove(waiter)
            reply = protocol.ContainerReply(self.containers.get(waiter.container_id))
            self._send(waiter.connection, protocol.encode_reply(reply))

    @staticmethod
    def _drain(sock: socket.socket) -> None:
        try:
            while sock.recv(4096):
                pass
        except BlockingIOError:
            pass

    # ---- clients

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, ("client", Connection(sock)))

    def _client_ready(self, connection: Connection, events: int) -> None:
        if events & selectors.EVENT_WRITE:
            self._flush(connection)
        if not events & selectors.EVENT_READ or connection.closed:
            return
        try:
            data = connection.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._disconnect(connection)
            return
        connection.inbox += data
        while b"\n" in connection.inbox and not connection.closed:
            line, _, rest = bytes(connection.inbox).partition(b"\n")
            connection.inbox = bytearray(rest)
            self._handle(connection, line)

    def _handle(self, connection: Connection, line: bytes) -> None:
        try:
            request = protocol.decode_request(line)
            reply = self.handlers[type(request)](connection, request)
        except ContainerRuntimeError as error:
            reply = protocol.ErrorReply(error.reason, error.message)
        except Exception as error:  # one bad request must not take the node's containers down
            log.exception("request %r failed", line[:200])
            reply = protocol.ErrorReply("InternalError", str(error))
        if reply is not None:
            self._send(connection, protocol.encode_reply(reply))

    def _send(self, connection: Connection, message: bytes) -> None:
        if connection.closed:
            return
        connection.outbox += message
        if len(connection.outbox) > MAX_OUTBOX_BYTES:
            # A subscriber that stopped reading must not grow this process without bound; it
            # reconnects and re-lists, which is what the runtime does when its stream breaks.
            log.warning("dropping a client that stopped reading (%d bytes unsent)", len(connection.outbox))
            self._disconnect(connection)
            return
        self._flush(connection)

    def _flush(self, connection: Connection) -> None:
        try:
            while connection.outbox:
                sent = connection.sock.send(connection.outbox)
                del connection.outbox[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self._disconnect(connection)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if connection.outbox else 0)
        self.selector.modify(connection.sock, events, ("client", connection))

    def _disconnect(self, connection: Connection) -> None:
        if connection.closed:
            return
        connection.closed = True
        self.waiters = [waiter for waiter in self.waiters if waiter.connection is not connection]
        self.selector.unregister(connection.sock)
        connection.sock.close()

    # ---- starting children

    def _run_child(self, child, *args, wait_intermediate: bool = True) -> tuple[int, int, list[dict]]:
        """Fork `child(*args, status_fd)`; read its status pipe to end of file (= exec or death).

        Returns (forked pid, pid of the resulting process, messages). Runs synchronously: the
        child's setup takes milliseconds, and a single-threaded loop keeps fork safe.
        """
        status_read, status_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(status_read)
            child(*args, status_write)
            os._exit(1)  # not reached: the child execs or exits
        os.close(status_write)
        received = b""
        deadline = time.monotonic() + SETUP_TIMEOUT_SECONDS
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not readable(status_read, remaining):
                    self._kill_quietly(pid, *[message["pid"] for message in _status_messages(received) if "pid" in message])
                    raise ContainerRuntimeError("CreateContainerError", f"setup did not finish within {SETUP_TIMEOUT_SECONDS:.0f}s")
                chunk = os.read(status_read, 4096)
                if not chunk:
                    break
                received += chunk
        finally:
            os.close(status_read)
        messages = _status_messages(received)
        reported = [message["pid"] for message in messages if "pid" in message]
        final_pid = reported[-1] if reported else pid
        if final_pid != pid and wait_intermediate:
            os.waitpid(pid, 0)  # the intermediate has exited right after reporting
        return pid, final_pid, messages

    @staticmethod
    def _kill_quietly(*pids: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ---- request handlers, one per request type (protocol.py)

    def ping(self, connection: Connection, request: protocol.Ping) -> protocol.Pong:
        return protocol.Pong(os.getpid(), protocol.PROTOCOL_VERSION)

    def create_sandbox(self, connection: Connection, request: protocol.CreateSandbox) -> protocol.SandboxReply:
        spec = request.spec
        existing = self.sandboxes.get(spec.id)
        if existing is not None and existing.status == SandboxStatus.RUNNING and process_alive(existing.pid, existing.start_time):
            raise ContainerRuntimeError("CreatePodSandboxError", f"sandbox {spec.id} already has a running pause process {existing.pid}")
        _, pause_pid, messages = self._run_child(run_sandbox_child, spec)
        errors = [message for message in messages if "reason" in message]
        if errors:
            raise ContainerRuntimeError(errors[0]["reason"], errors[0]["message"])
        sandbox = SandboxRecord(id=spec.id, pod_name=request.pod_name, namespace=request.namespace, ip=request.ip,
                                cgroup=request.cgroup, pid=pause_pid, start_time=linux.process_start_time(pause_pid),
                                share_process_namespace=spec.share_process_namespace, started_at=time.time())
        self.sandboxes[spec.id] = sandbox
        self.children[pause_pid] = ("sandbox", spec.id)
        self._save_sandbox(sandbox)
        return protocol.SandboxReply(sandbox)

    def set_sandbox_veth(self, connection: Connection, request: protocol.SetSandboxVeth) -> protocol.SandboxReply:
        sandbox = self._sandbox(request.id)
        sandbox.host_veth = request.host_veth
        self._save_sandbox(sandbox)
        return protocol.SandboxReply(sandbox)

    def remove_sandboxes(self, connection: Connection, request: protocol.RemoveSandboxes) -> protocol.Done:
        for sandbox_id in request.ids:
            if self.sandboxes.pop(sandbox_id, None) is not None:
                try:
                    os.unlink(os.path.join(self.sandboxes_dir, f"{sandbox_id}.json"))
                except FileNotFoundError:
                    pass
        return protocol.Done()

    def start_container(self, connection: Connection, request: protocol.StartContainer) -> protocol.Reply:
        spec = request.spec
        existing = self.containers.get(spec.id)
        if existing is not None and existing.status == ContainerStatus.RUNNING:
            raise ContainerRuntimeError("CreateContainerError", f"container {spec.id} ({spec.name}) is already running")
        self._forget_container(spec.id)
        os.makedirs(spec.directory, exist_ok=True)
        container = ContainerRecord(id=spec.id, sandbox_id=spec.sandbox_id, name=spec.name, attempt=spec.attempt,
                                    log_path=spec.log_path, cgroup=spec.cgroup, spec=spec)
        self._index(container)  # written to disk once it runs or failed: a reader never sees "created"
        try:
            # The forked child becomes the container's monitor; the pid reported is the container's.
            monitor_pid, pid, messages = self._run_child(run_monitored_container, spec, self.monitor_binary,
                                                         self.last_cap, wait_intermediate=False)
        except ContainerRuntimeError as error:
            container.transition(ContainerStatus.EXITED, exit_code=128, finished_at=time.time(), reason=error.reason,
                                 message=error.message)
            self._save_container(container)
            raise
        errors = [message for message in messages if "reason" in message]
        if errors:
            # An exec that failed is a StartError termination (exit 128), as containerd records it;
            # a bad configuration (CreateContainerError) keeps its own reason. The monitor ends by itself.
            reason = "StartError" if errors[0]["reason"] == "RunContainerError" else errors[0]["reason"]
            container.transition(ContainerStatus.EXITED, exit_code=128, finished_at=time.time(), reason=reason,
                                 message=errors[0]["message"])
            self._save_container(container)
            return protocol.ErrorReply(errors[0]["reason"], errors[0]["message"], container)
        container.transition(ContainerStatus.RUNNING, pid=pid, start_time=start_time_or_zero(pid), started_at=time.time(),
                             monitor_pid=monitor_pid, monitor_start_time=start_time_or_zero(monitor_pid))
        self.children[monitor_pid] = ("monitor", spec.id)
        self._save_container(container)
        self._follow(pid, "container", spec.id)
        return protocol.ContainerReply(container)

    def signal(self, connection: Connection, request: protocol.Signal) -> protocol.SignalReply:
        """Signal a container's PID 1 or a pod's pause process."""
        record: ContainerRecord | SandboxRecord | None
        if request.kind == protocol.SignalTarget.SANDBOX:
            record = self.sandboxes.get(request.id)
            running = record is not None and record.status == SandboxStatus.RUNNING
        else:
            record = self.containers.get(request.id)
            running = record is not None and record.status == ContainerStatus.RUNNING
        if record is None:
            raise ContainerRuntimeError("NotFound", f"{request.kind.value} {request.id} is not known to the supervisor")
        if running and process_alive(record.pid, record.start_time):
            os.kill(record.pid, request.signal)
            return protocol.SignalReply(True)
        return protocol.SignalReply(False)

    def wait_exit(self, connection: Connection, request: protocol.WaitExit) -> protocol.ContainerReply | None:
        container = self.containers.get(request.id)
        if container is None or container.status != ContainerStatus.RUNNING:
            return protocol.ContainerReply(container)
        self.waiters.append(ExitWaiter(connection, request.id, time.monotonic() + float(request.timeout)))
        return None  # answered by _announce or _expire_waiters

    def remove_container(self, connection: Connection, request: protocol.RemoveContainer) -> protocol.Done:
        container = self.containers.get(request.id)
        if container is not None and container.status == ContainerStatus.RUNNING:
            raise ContainerRuntimeError("ContainerRunning", f"container {request.id} is running; stop it before removing it")
        self._forget_container(request.id)
        return protocol.Done()

    def _forget_container(self, container_id: str) -> None:
        """Drop the record and move the container's directory aside in one rename.

        Deleting the directory (upper dir, logs of the overlay's work dir) costs a dozen
        filesystem calls; the caller does that in its own thread (`LinuxRuntime.remove_container`)
        so this single loop, which every pod on the node waits on, does not. A directory left
        aside by a caller that died is deleted when the supervisor next starts.
        """
        self._unindex(container_id)
        self.pending_exits.pop(container_id, None)
        directory = os.path.join(self.containers_dir, container_id)
        try:
            os.rename(directory, os.path.join(self.containers_dir, protocol.REMOVED_CONTAINER_PREFIX + container_id))
        except FileNotFoundError:
            pass
        except OSError:  # one removed before and not yet deleted: delete this one here
            shutil.rmtree(directory, ignore_errors=True)

    def list_records(self, connection: Connection, request: protocol.ListRecords) -> protocol.ListReply:
        if request.sandbox_id is None:
            containers = list(self.containers.values())
            sandboxes = list(self.sandboxes.values())
        else:
            containers = [self.containers[container_id]
                          for container_id in sorted(self.containers_of_sandbox.get(request.sandbox_id, ()))]
            sandboxes = [self.sandboxes[request.sandbox_id]] if request.sandbox_id in self.sandboxes else []
        if request.running_sandboxes_only:
            sandboxes = [sandbox for sandbox in sandboxes if sandbox.status == SandboxStatus.RUNNING]
        return protocol.ListReply(sandboxes, containers)

    def subscribe(self, connection: Connection, request: protocol.Subscribe) -> protocol.Done:
        connection.subscribed = True
        return protocol.Done()

    def shutdown(self, connection: Connection, request: protocol.Shutdown) -> protocol.Pong:
        self.running = False
        return protocol.Pong(os.getpid(), protocol.PROTOCOL_VERSION)

    def _sandbox(self, sandbox_id: str) -> SandboxRecord:
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is None:
            raise ContainerRuntimeError("NotFound", f"sandbox {sandbox_id} is not known to the supervisor")
        return sandbox


# ---- running detached ------------------------------------------------------------------------------


def detach(home: str, keep_fd: int | None) -> None:
    """Double fork and setsid: the supervisor belongs to no terminal and to no daemon."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    log_fd = os.open(os.path.join(home, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    for first, last in ((3, keep_fd), ((keep_fd or 2) + 1, 1 << 16)):
        if last is not None:
            os.closerange(first, last)  # nothing of the daemon that started us stays open here
    os.chdir("/")


def hold_pid_file(home: str) -> int | None:
    """Lock and fill supervisor.pid; None when another supervisor holds it (it is alive)."""
    fd = os.open(pid_path(home), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            os.close(fd)
            return None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def readable(fd: int, timeout: float) -> bool:
    """Whether `fd` becomes readable within `timeout` seconds. poll(2), not select(2): with a
    thousand pods the supervisor holds over 2,000 descriptors, beyond select's 1,024."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def raise_open_files_limit() -> None:
    """Two log pipes per container: a thousand pods need more than the usual soft limit of 1,024
    descriptors. The soft limit goes up to the hard one (containerd runs with no limit at all)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def take_over(home: str, old_pid: int) -> None:
    """Stop the supervisor of an earlier release so this one serves the node (see "Taking over").

    The old one runs old code and answers only the requests whose shape never changed (ping and
    shutdown). Its containers and pause processes keep running: shutting down never stops them.
    If it held its containers' stdout/stderr pipes (releases before the monitors), their read
    ends are first copied out of it, so the containers never write into a closed pipe.
    """
    try:
        pidfd = os.pidfd_open(old_pid)
    except ProcessLookupError:
        return
    try:
        try:
            keep_pipes_open(home, old_pid, pidfd)
        except OSError as error:
            log.warning("could not take the log pipes over from the supervisor %d: %s", old_pid, error)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(TAKEOVER_TIMEOUT_SECONDS)
                sock.connect(socket_path(home))
                sock.sendall(protocol.encode_request(protocol.Shutdown()))
                sock.recv(4096)
        except OSError as error:
            log.warning("the supervisor %d did not answer shutdown (%s); killing it", old_pid, error)
        if not readable(pidfd, TAKEOVER_TIMEOUT_SECONDS):
            os.kill(old_pid, signal.SIGKILL)
            readable(pidfd, TAKEOVER_TIMEOUT_SECONDS)
        log.info("took over from the supervisor %d of an earlier release", old_pid)
    finally:
        os.close(pidfd)


def keep_pipes_open(home: str, old_pid: int, old_pidfd: int) -> None:
    """Give the pipes the old supervisor reads for its running containers to monitors of ours.

    The pipes are matched through /proc (the container's fd 1 and 2 and the old supervisor's
    descriptor name the same `pipe:[inode]`) and copied with pidfd_getfd(2). The monitor gets no
    child: it logs until the container's end closes the pipes. Such a container's exit code stays
    unknown (it is nobody's child we know).
    """
    held: dict[str, int] = {}
    for entry in os.listdir(f"/proc/{old_pid}/fd"):
        try:
            held[os.readlink(f"/proc/{old_pid}/fd/{entry}")] = int(entry)
        except OSError:
            continue
    containers_dir = os.path.join(home, "containers")
    monitor_binary = monitor.ensure_monitor_binary(home)
    for entry in os.listdir(containers_dir):
        if entry.startswith(protocol.REMOVED_CONTAINER_PREFIX):
            continue
        try:
            container = protocol.load_container_record(os.path.join(containers_dir, entry, "state.json"))
        except ContainerRuntimeError:
            continue
        if (container is None or container.spec is None or container.monitor_pid
                or container.status != ContainerStatus.RUNNING or not process_alive(container.pid, container.start_time)):
            continue
        try:
            targets = [held.get(os.readlink(f"/proc/{container.pid}/fd/{number}")) for number in (1, 2)]
        except OSError:
            continue
        if None in targets:
            continue
        copies = [linux.pidfd_getfd(old_pidfd, target) for target in targets if target is not None]
        try:
            if os.fork() == 0:
                try:
                    os.dup2(copies[0], monitor.STDOUT_FD)
                    os.dup2(copies[1], monitor.STDERR_FD)
                    os.execv(monitor_binary, monitor.monitor_arguments(monitor_binary, container.spec))
                finally:
                    os._exit(127)
        finally:
            for copy in copies:
                os.close(copy)
        log.info("container %s keeps its log pipes under a monitor of this release", container.id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="minikube-py's per-node container supervisor")
    parser.add_argument("--home", required=True)
    parser.add_argument("--foreground", action="store_true", help="do not detach (for debugging)")
    parser.add_argument("--ready-fd", type=int, help="write 'ready' on this descriptor once serving")
    parser.add_argument("--take-over-from", type=int, metavar="PID",
                        help="first stop this running supervisor of another protocol version")
    options = parser.parse_args(argv)
    home = os.path.abspath(options.home)
    if not options.foreground:
        detach(home, options.ready_fd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s supervisor %(levelname)s %(message)s")
    raise_open_files_limit()
    if options.take_over_from:
        take_over(home, options.take_over_from)
    lock = hold_pid_file(home)
    if lock is None:
        log.info("another supervisor already runs for %s", home)
        return
    try:
        Supervisor(home).serve(options.ready_fd)
    finally:
        os.unlink(pid_path(home))
        os.close(lock)


if __name__ == "__main__":
    main()
