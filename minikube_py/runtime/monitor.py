"""A small monitor process per container, so its logs and exit code survive the supervisor.

The supervisor is one long-lived process; if it held every container's stdout/stderr pipes and
were every container's parent, killing it would lose every later log line (the writers get
EPIPE) and every exit code. So, as conmon and containerd's shim do, each container gets its own
monitor (monitor.c, built at start into `home/bin/monitor-<hash>` like pause):

    supervisor --fork--> A: makes the pipes, becomes a child subreaper, forks B, execs the monitor
                           B: the usual container setup (container.py), reports the container's
                              pid on the status pipe, execs the user's command

The monitor reads the pipes into the CRI log file and, being the container's parent, writes its
exact wait status to `containers/<id>/exit` (one `<pid> <wait status>` line per reaped child,
after the output read until then is in the log). The supervisor follows the container through a
pidfd, which works just as well after a supervisor restart, when monitors are no longer its
children, and reads the exit file when the process ends. This module holds A's code (it runs in
the forked child, so it imports nothing at start) and the reading of the exit file.
"""

from __future__ import annotations

import fcntl
import os
from typing import NoReturn

from minikube_py.runtime import linux
from minikube_py.runtime.container import ContainerSpec, report, reset_after_fork, run_container_child
from minikube_py.runtime.pause import ensure_binary

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "monitor.c")
STDOUT_FD, STDERR_FD = 3, 4  # where the monitor finds the pipes' read ends (a TTY's master on 3)
STDIN_HOLDER_FD = 5  # the write end of a `stdin: true` container's stdin pipe, kept open by the monitor


def ensure_monitor_binary(home: str, compiler: str = "cc") -> str:
    return ensure_binary(home, SOURCE, "monitor", compiler)


def exit_file(container_directory: str) -> str:
    return os.path.join(container_directory, "exit")


def read_exit_status(path: str, pid: int) -> int | None:
    """The wait status the monitor recorded for `pid`, or None when it has recorded none (yet)."""
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) == 2 and fields[0] == str(pid):
            return int(fields[1])
    return None


def monitor_arguments(monitor_binary: str, spec: ContainerSpec) -> list[str]:
    return [monitor_binary, exit_file(spec.directory), spec.log_path, str(spec.log_max_bytes),
            str(spec.log_max_files)] + (["partial"] if spec.tty else [])


def run_monitored_container(spec: ContainerSpec, monitor_binary: str, last_cap: int, status_fd: int) -> NoReturn:
    """A, in the supervisor's forked child: fork the container's setup, then become its monitor."""
    try:
        reset_after_fork()
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)  # the container, orphaned by B, comes to us
        stdin_read = stdin_write = None
        if spec.tty:
            # A terminal: the container's stdin, stdout and stderr are its slave; the monitor
            # reads the master as stdout (the runtime takes a copy of it for attach's input).
            stdout_read, stdout_write = os.openpty()
            stderr_read, stderr_write = os.pipe()
            os.close(stderr_write)  # nothing comes on stderr: at its end at once
            stdin_read = stderr_write = stdout_write
        else:
            stdout_read, stdout_write = os.pipe()
            stderr_read, stderr_write = os.pipe()
            if spec.stdin:
                stdin_read, stdin_write = os.pipe()
        if spec.log_path:
            os.makedirs(os.path.dirname(spec.log_path), exist_ok=True)
        if os.fork() == 0:
            os.close(stdout_read)
            os.close(stderr_read)
            if stdin_write is not None:
                os.close(stdin_write)
            run_container_child(spec, stdout_write, stderr_write, last_cap, status_fd, stdin_read)
        os.close(stdout_write)
        if stderr_write != stdout_write:
            os.close(stderr_write)
        if stdin_read is not None and stdin_read != stdout_write:
            os.close(stdin_read)
        # Move the read ends above the targets first, so neither dup2 overwrites the other.
        stdout_high = fcntl.fcntl(stdout_read, fcntl.F_DUPFD_CLOEXEC, 10)
        stderr_high = fcntl.fcntl(stderr_read, fcntl.F_DUPFD_CLOEXEC, 10)
        stdin_high = fcntl.fcntl(stdin_write, fcntl.F_DUPFD_CLOEXEC, 10) if stdin_write is not None else None
        os.dup2(stdout_high, STDOUT_FD, inheritable=True)
        os.dup2(stderr_high, STDERR_FD, inheritable=True)
        if stdin_high is not None:
            os.dup2(stdin_high, STDIN_HOLDER_FD, inheritable=True)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        # The status pipe closes at exec: the supervisor sees the end.
        linux.close_range_cloexec((STDIN_HOLDER_FD if stdin_high is not None else STDERR_FD) + 1)
        os.execv(monitor_binary, monitor_arguments(monitor_binary, spec))
    except BaseException as error:  # the child must never return into the supervisor's loop
        try:
            report(status_fd, {"reason": "CreateContainerError", "message": f"the monitor of container {spec.name}: {error}"})
        finally:
            os._exit(1)
