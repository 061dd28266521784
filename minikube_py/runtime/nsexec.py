"""Run a command inside a running container: `python -m minikube_py.runtime.nsexec --pid P ... -- argv`.

`kubectl exec` and exec probes need a process that sees what the container sees. This small
program, started by `LinuxRuntime.exec_sync` / `exec_stream` with the caller's pipes as its
stdio (and, for a TTY, a console socket: the pty is made in the container's own devpts and its
master sent back, as runc does), joins the container's cgroup and its ipc, uts, net, pid and mount namespaces through
/proc/<pid>/ns (and its cgroup namespace), forks (a process enters a PID namespace only by being
born in it), and the child takes on the container's working directory, environment, user,
groups, capabilities, no_new_privs and seccomp filter before exec. The parent waits and exits with the command's status (128 + N when killed by N), so
the runtime reads the exit code as if the command had been its own child; SIGTERM to the parent
kills the command.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import socket
import struct
import sys
import termios

from minikube_py.runtime import linux, seccomp
from minikube_py.runtime.container import (
    DEFAULT_PATH,
    confine,
    join_cgroups,
    join_namespaces,
    reset_after_fork,
    resolve_executable,
)

# The mount namespace comes last: joining it changes the root and the working directory.
NAMESPACE_ORDER = ("ipc", "uts", "net", "pid", "cgroup", "mnt")
TIOCSPTLCK = 0x40045431  # unlock a pty's slave
TIOCGPTPEER = 0x5441  # open a pty's slave from its master, without a path (Linux 4.13)


def read_environment(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as file:
        entries = file.read().split(b"\0")
    environment = {}
    for entry in entries:
        name, separator, value = entry.decode(errors="replace").partition("=")
        if separator:
            environment[name] = value
    return environment


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m minikube_py.runtime.nsexec",
                                     description="run a command inside a running container")
    parser.add_argument("--pid", type=int, required=True, help="host pid of the container's PID 1")
    parser.add_argument("--start-time", type=int, required=True, help="its /proc/PID/stat start time (guards pid reuse)")
    parser.add_argument("--cgroup-dir", action="append", default=[], help="absolute cgroup directory to join")
    parser.add_argument("--uid", type=int, default=0)
    parser.add_argument("--gid", type=int, default=0)
    parser.add_argument("--cwd", default="/")
    parser.add_argument("--group", type=int, action="append", default=[], help="supplementary group")
    parser.add_argument("--capabilities", help="comma-separated capability numbers (default: Docker's set)")
    parser.add_argument("--allow-privilege-escalation", action="store_true", help="do not set no_new_privs")
    parser.add_argument("--seccomp-program", default="", help="compiled seccomp filter to load before exec")
    parser.add_argument("--tty", action="store_true", help="stdin is a terminal: make it the controlling one")
    parser.add_argument("--console-socket", type=int,
                        help="with --tty: make the pty in the container's devpts and send its master over this socket")
    parser.add_argument("command", nargs="+")
    return parser.parse_args(argv)


def enter_container(options: argparse.Namespace) -> None:
    if linux.process_start_time(options.pid) != options.start_time:
        raise ProcessLookupError(f"process {options.pid} is no longer the container's PID 1")
    join_cgroups(options.cgroup_dir)
    join_namespaces([(kind, f"/proc/{options.pid}/ns/{kind}") for kind in NAMESPACE_ORDER])


def open_console(console_socket: int) -> int:
    """A pty of the container's own devpts, so `tty` inside names it: the master goes back to the
    runtime over the socket (as runc's console socket does), the slave is returned for the command."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
        with socket.socket(fileno=console_socket) as channel:
            socket.send_fds(channel, [b"pty"], [master])
    finally:
        os.close(master)
    return slave


def run_command(options: argparse.Namespace, environment: dict[str, str], last_cap: int, program: bytes | None,
                console: int | None = None) -> None:
    """The child: becomes the container's user in its working directory and execs (never returns)."""
    reset_after_fork()
    if console is not None:
        for target in (0, 1, 2):
            os.dup2(console, target)
        os.close(console)
    if options.tty:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    try:
        os.chdir(options.cwd)
    except OSError:
        os.chdir("/")
    capabilities = None if options.capabilities is None else [int(n) for n in options.capabilities.split(",") if n]
    confine(program, options.uid, options.gid, last_cap, capabilities, options.group,
            not options.allow_privilege_escalation)
    # After the uid change, which clears it: die with the parent, so a timed-out exec leaves nothing.
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    command = options.command[0]
    executable = resolve_executable(command, environment.get("PATH", DEFAULT_PATH))
    if executable is None:
        sys.stderr.write(f'exec: "{command}": executable file not found in $PATH\n')
        os._exit(127)
    try:
        os.execve(executable, options.command, environment)
    except OSError as error:
        sys.stderr.write(f'exec: "{command}": {error.strerror.lower()}\n')
        os._exit(126)


def main(argv: list[str] | None = None) -> None:
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    last_cap = linux.last_capability()
    try:
        environment = read_environment(options.pid)
        # Read on the host side: the program's path means nothing inside the container.
        program = seccomp.read_program(options.seccomp_program) if options.seccomp_program else None
        enter_container(options)
        console = open_console(options.console_socket) if options.console_socket is not None else None
    except OSError as error:
        sys.stderr.write(f"cannot enter container process {options.pid}: {error}\n")
        sys.exit(126)
    child = os.fork()
    if child == 0:
        try:
            run_command(options, environment, last_cap, program, console)
        except BaseException as error:  # the child must not fall back into the parent's code
            sys.stderr.write(f"exec in container process {options.pid} failed: {error}\n")
            sys.stderr.flush()
        os._exit(126)
    if console is not None:
        os.close(console)  # the command holds the terminal now: its end is the master's EOF
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda received, frame: os.kill(child, received))
    # SIGTERM is how the runtime ends a timed-out or abandoned exec: kill the command and still
    # reap it here, so no zombie is left to a container's PID 1 that may never reap.
    signal.signal(signal.SIGTERM, lambda received, frame: os.kill(child, signal.SIGKILL))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            sys.exit(126)
        except InterruptedError:
            continue
    os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
