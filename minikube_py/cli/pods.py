"""Commands that reach into a running pod: logs, exec, attach, port-forward and inspect.

They go through the API's pod subresources, which the node agent serves: `log` streams a
container's log file (following it with `-f`), `exec` runs a command inside the container's
namespaces with stdin, stdout, stderr, resizes and the exit code carried over one WebSocket
(Kubernetes' v5.channel.k8s.io protocol, as kubectl speaks it), `attach` joins a container's
main process on the same protocol, `port-forward` opens one
WebSocket (v4.channel.k8s.io) per local connection to the pod's port, and
`inspect` returns what the pod is made of on this host (pids, namespace inodes, cgroups, veth).
`inspect` prints that as a readable outline, marking each namespace a container shares with the
pause process: the point of a pod made visible.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading

from minikube_py.cli.describe import DescribeWriter
from minikube_py.cli.context import CommandError, Context, Subcommands, print_error, split_type_and_name

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def register(subcommands: Subcommands) -> None:
    logs = subcommands.add("logs", "print the logs of a container in a pod", namespaced=True)
    logs.add_argument("pod", metavar="POD", help="the pod's name (or pod/NAME)")
    logs.add_argument("-c", "--container", help="the container (default: the pod's default or first container)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines as they are written")
    logs.add_argument("--tail", type=int, default=-1, metavar="N", help="print only the last N lines (-1: all)")
    logs.add_argument("--timestamps", action="store_true", help="prefix each line with its RFC 3339 time")
    logs.add_argument("-p", "--previous", action="store_true",
                      help="print the logs of the previous, terminated instance of the container")
    logs.set_defaults(run=run_logs)

    exec_command = subcommands.add("exec", "run a command in a container of a pod", namespaced=True)
    exec_command.add_argument("pod", metavar="POD", help="the pod's name (or pod/NAME)")
    exec_command.add_argument("-c", "--container",
                              help="the container (default: the pod's default or first container)")
    exec_command.add_argument("-i", "--stdin", action="store_true", help="pass this terminal's stdin to the command")
    exec_command.add_argument("-t", "--tty", action="store_true",
                              help="give the command a terminal (this terminal goes into raw mode)")
    exec_command.usage = "minikube-py exec POD [-c NAME] [-i] [-t] -- COMMAND [ARG...]"
    exec_command.set_defaults(run=run_exec, takes_command=True)

    attach = subcommands.add("attach", "attach to the main process of a running container", namespaced=True)
    attach.add_argument("pod", metavar="POD", help="the pod's name (or pod/NAME)")
    attach.add_argument("-c", "--container", help="the container (default: the pod's default or first container)")
    attach.add_argument("-i", "--stdin", action="store_true",
                        help="pass this terminal's stdin to the container (it needs stdin: true)")
    attach.add_argument("-t", "--tty", action="store_true",
                        help="the container's stdin is a terminal (it needs tty: true; this terminal goes into raw mode)")
    attach.usage = "minikube-py attach POD [-c NAME] [-i] [-t]"
    attach.set_defaults(run=run_attach)

    forward = subcommands.add("port-forward", "forward local ports to a pod's ports", namespaced=True)
    forward.add_argument("pod", metavar="POD", help="the pod's name (or pod/NAME)")
    forward.add_argument("ports", metavar="[LOCAL:]REMOTE", nargs="+",
                         help="a local port and the pod's port (LOCAL 0 or left out: a free local port, or the same)")
    forward.add_argument("--address", default="127.0.0.1",
                         help="the local address to listen on (default: 127.0.0.1; 'localhost' also listens on ::1)")
    forward.usage = "minikube-py port-forward POD [LOCAL:]REMOTE [...] [--address ADDRESS]"
    forward.set_defaults(run=run_port_forward)

    inspect = subcommands.group("inspect", "show how an object is built on this host")
    inspect_pod = inspect.add("pod", "show a pod's processes, namespace inodes, cgroups, rootfs, veth and IP",
                              namespaced=True)
    inspect_pod.add_argument("name", metavar="NAME", help="the pod's name")
    inspect_pod.add_argument("-o", "--output", choices=["json"], help="print the raw inspect document as JSON")
    inspect_pod.set_defaults(run=run_inspect_pod)


def pod_name(text: str) -> str:
    info, name = split_type_and_name(text, default_type="pods")
    if info.plural != "pods":
        raise CommandError(f"expected a pod, got {text!r}")
    return name


def choose_container(context: Context, namespace: str, name: str, container: str | None) -> str:
    """kubectl's default container: the annotation's, else the first; says so when there is a choice."""
    if container:
        return container
    pod = context.transport.get("pods", namespace, name)
    names = [item["name"] for item in pod["spec"].get("containers") or []]
    annotated = (pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    chosen = annotated if annotated in names else names[0]
    if len(names) > 1:
        print_error(f'Defaulted container "{chosen}" out of: {", ".join(names)}')
    return chosen


def write_bytes(stream, data: bytes) -> None:
    stream.flush()
    stream.buffer.write(data)
    stream.buffer.flush()


def run_logs(args: argparse.Namespace, context: Context) -> int:
    name, namespace = pod_name(args.pod), context.default_namespace
    container = choose_container(context, namespace, name, args.container)
    chunks = context.transport.logs(namespace, name, container=container, follow=args.follow,
                                    tail_lines=None if args.tail < 0 else args.tail,
                                    timestamps=args.timestamps, previous=args.previous)
    try:
        for chunk in chunks:
            write_bytes(sys.stdout, chunk)
    except KeyboardInterrupt:
        pass
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    return 0


def forward_stdin(session) -> None:
    """Copy our stdin to the command until end of file, then tell the command so."""
    try:
        while True:
            data = os.read(sys.stdin.fileno(), 65536)
            if not data:
                break
            session.write_stdin(data)
    except (OSError, ValueError):
        pass
    finally:
        try:
            session.close_stdin()
        except OSError:
            pass


def run_exec(args: argparse.Namespace, context: Context) -> int:
    command = args.trailing
    if not command:
        raise CommandError("you must specify at least one command for the container, after --")
    name, namespace = pod_name(args.pod), context.default_namespace
    container = choose_container(context, namespace, name, args.container)
    # kubectl's SetupTTY: a terminal only with -i and a real terminal on stdin.
    tty = args.tty and args.stdin and sys.stdin.isatty()
    if args.tty and args.stdin and not tty:
        print_error("Unable to use a TTY - input is not a terminal or the right kind of file")
    session = context.transport.exec(namespace, name, container, command, stdin=args.stdin, tty=tty)
    return stream_session(session, args.stdin, tty)


def run_attach(args: argparse.Namespace, context: Context) -> int:
    name, namespace = pod_name(args.pod), context.default_namespace
    container = choose_container(context, namespace, name, args.container)
    tty = args.tty and args.stdin and sys.stdin.isatty()
    if args.tty and args.stdin and not tty:
        print_error("Unable to use a TTY - input is not a terminal or the right kind of file")
    if tty:
        print_error("If you don't see a command prompt, try pressing enter.")
    session = context.transport.attach(namespace, name, container, stdin=args.stdin, tty=tty)
    return stream_session(session, args.stdin, tty)


def stream_session(session, stdin: bool, tty: bool) -> int:
    """Copy this terminal to and from an exec or attach session until it ends; its exit code.
    With a TTY the terminal goes into raw mode and its size follows the window (SIGWINCH)."""
    terminal_settings = None
    if tty:
        import signal
        import termios
        import tty as terminal

        terminal_settings = termios.tcgetattr(sys.stdin.fileno())
        terminal.setraw(sys.stdin.fileno())
        send_terminal_size(session)
        signal.signal(signal.SIGWINCH, lambda number, frame: send_terminal_size(session))
    try:
        if stdin:
            threading.Thread(target=forward_stdin, args=(session,), daemon=True, name="exec-stdin").start()
        for channel, data in session.read():
            write_bytes(sys.stderr if channel == 2 else sys.stdout, data)
        return session.wait()
    except KeyboardInterrupt:
        session.kill()
        return 130
    finally:
        if terminal_settings is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, terminal_settings)


def send_terminal_size(session) -> None:
    try:
        size = os.get_terminal_size(sys.stdin.fileno())
    except OSError:
        return
    session.resize(size.columns, size.lines)


def parse_port_pair(text: str) -> tuple[int, int]:
    """`8080` (the same port locally), `18080:8080`, `:8080` (a free local port)."""
    local, separator, remote = text.rpartition(":")
    if not separator:
        local = remote
    try:
        local_port, remote_port = int(local or 0), int(remote)
    except ValueError:
        raise CommandError(f"invalid port {text!r}: use REMOTE, LOCAL:REMOTE or :REMOTE") from None
    if not 0 < remote_port < 65536 or not 0 <= local_port < 65536:
        raise CommandError(f"invalid port {text!r}: ports are numbers from 1 to 65535")
    return local_port, remote_port


def run_port_forward(args: argparse.Namespace, context: Context) -> int:
    import socket

    name, namespace = pod_name(args.pod), context.default_namespace
    pod = context.transport.get("pods", namespace, name)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise CommandError(f"unable to forward port because pod is not running. Current status={phase}")
    addresses = ["127.0.0.1", "::1"] if args.address == "localhost" else [args.address]
    listeners = []
    for local_port, remote_port in (parse_port_pair(text) for text in args.ports):
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((address, local_port))
            except OSError as error:
                raise CommandError(f"unable to listen on {address}:{local_port}: {error.strerror}") from None
            listener.listen(64)
            local_port = listener.getsockname()[1]
            shown = f"[{address}]" if family == socket.AF_INET6 else address
            print(f"Forwarding from {shown}:{local_port} -> {remote_port}", flush=True)
            listeners.append((listener, remote_port))
    for listener, remote_port in listeners:
        threading.Thread(target=accept_forwarded, args=(context, namespace, name, listener, remote_port),
                         daemon=True, name="port-forward-accept").start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        return 0
    return 0


def accept_forwarded(context: Context, namespace: str, name: str, listener, remote_port: int) -> None:
    while True:
        local, _ = listener.accept()
        print(f"Handling connection for {listener.getsockname()[1]}", flush=True)
        threading.Thread(target=forward_connection, args=(context, namespace, name, local, remote_port),
                         daemon=True, name="port-forward").start()


def forward_connection(context: Context, namespace: str, name: str, local, remote_port: int) -> None:
    """One local connection over its own WebSocket to the pod's port, until either side ends."""
    import socket

    try:
        channels = context.transport.port_forward(namespace, name, remote_port)
    except Exception as error:  # one connection's failure is reported, the forwarder goes on
        print_error(f"an error occurred forwarding {remote_port}: {error}")
        local.close()
        return

    def to_pod() -> None:
        try:
            while data := local.recv(65536):
                channels.send(0, data)
        except OSError:
            pass
        channels.close()

    threading.Thread(target=to_pod, daemon=True, name="port-forward-in").start()
    opened = set()
    try:
        while (message := channels.receive()) is not None:
            channel, data = message
            if channel not in opened:  # each channel starts with the port it serves
                opened.add(channel)
                continue
            if channel == 0:
                local.sendall(data)
            elif channel == 1 and data:
                print_error(f"an error occurred forwarding {remote_port}: {data.decode(errors='replace')}")
    except OSError:
        pass
    finally:
        try:
            local.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        local.close()
        channels.shutdown()
        channels.sock.close()


def _limit_lines(limits: dict) -> list[str]:
    memory, pids = limits.get("memory_bytes"), limits.get("pids_max")
    quota, period = limits.get("cpu_quota_us"), limits.get("cpu_period_us")
    lines = [f"memory:\t{f'{memory} bytes ({memory // (1 << 20)}Mi)' if memory else 'unlimited'}"]
    if quota:
        lines.append(f"cpu:\t{quota}us per {period}us ({quota * 1000 // period}m)" if period else f"cpu:\t{quota}us")
    else:
        lines.append("cpu:\tunlimited")
    if limits.get("cpu_shares") is not None:
        lines.append(f"cpu shares:\t{limits['cpu_shares']}")
    lines.append(f"pids:\t{pids if pids else 'unlimited'}")
    return lines


def format_inspect(document: dict) -> str:
    """The inspect document as an outline; namespaces shared with pause are marked as such."""
    pod, pause = document.get("pod") or {}, document.get("pause") or {}
    writer = DescribeWriter()
    writer.write(0, f"Pod:\t{pod.get('namespace', '')}/{pod.get('name', '')}")
    writer.write(0, f"UID:\t{pod.get('uid', '')}")
    writer.write(0, f"IP:\t{pod.get('ip') or '<none>'}")
    writer.write(0, f"Host veth:\t{pod.get('hostVeth') or '<none>'}"
                    + (f" (on bridge {pod['bridge']})" if pod.get("bridge") else ""))
    writer.write(0, f"Pod cgroup:\t{pod.get('cgroup') or '<none>'}")
    pause_namespaces = pause.get("namespaces") or {}
    writer.write(0, "Pause:")
    writer.write(1, f"PID:\t{pause.get('pid', '<none>')}")
    writer.write(1, "Namespaces:")
    for kind, inode in sorted(pause_namespaces.items()):
        writer.write(2, f"{kind}:\t{inode}")
    writer.write(1, "Cgroups:")
    for controller, path in sorted((pause.get("cgroups") or {}).items()):
        writer.write(2, f"{controller}:\t{path}")
    containers = document.get("containers") or []
    writer.write(0, "Containers:" if containers else "Containers:\t<none>")
    for container in containers:
        shared = set(container.get("sharedWithPause") or [
            kind for kind, inode in (container.get("namespaces") or {}).items() if pause_namespaces.get(kind) == inode])
        writer.write(1, f"{container.get('name')}:")
        writer.write(2, f"ID:\t{container.get('id', '')}")
        writer.write(2, f"PID:\t{container.get('pid') or '<none>'}")
        writer.write(2, f"State:\t{container.get('state', '')}")
        writer.write(2, f"Image:\t{container.get('image', '')}")
        writer.write(2, f"Rootfs:\t{container.get('rootfs', '')}")
        if container.get("imageLayers"):
            writer.write(2, "Image layers (overlay lower dirs, top first):")
            for layer in container["imageLayers"]:
                writer.write(3, layer)
        writer.write(2, "Namespaces:")
        for kind, inode in sorted((container.get("namespaces") or {}).items()):
            writer.write(3, f"{kind}:\t{inode}{'  (shared with pause)' if kind in shared else ''}")
        writer.write(2, "Cgroups:")
        for controller, path in sorted((container.get("cgroups") or {}).items()):
            writer.write(3, f"{controller}:\t{path}")
        writer.write(2, "Limits:")
        for line in _limit_lines(container.get("limits") or {}):
            writer.write(3, line)
        security = container.get("security")
        if security:
            mode = {"0": "off", "1": "strict", "2": "filter"}.get(security.get("seccompMode", ""), "not running")
            writer.write(2, "Security:")
            writer.write(3, f"Seccomp:\t{security.get('seccompProfile', '')} ({mode})")
            writer.write(3, f"CapEff:\t{security.get('capEff') or '<none>'}")
            writer.write(3, f"NoNewPrivs:\t{security.get('noNewPrivs') or '<none>'}")
            writer.write(3, f"Privileged:\t{str(security.get('privileged', False)).lower()}")
            writer.write(3, f"ReadOnlyRoot:\t{str(security.get('readOnlyRootFilesystem', False)).lower()}")
    return writer.render()


def run_inspect_pod(args: argparse.Namespace, context: Context) -> int:
    document = context.transport.inspect(context.default_namespace, args.name)
    print(json.dumps(document, indent=2) if args.output == "json" else format_inspect(document))
    return 0
