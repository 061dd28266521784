"""Streaming responses: watches, pod logs, exec and attach, each holding its connection open.

A watch streams one JSON event per line over a chunked response until the client hangs up (the
`HangUpDetector` notices), `timeoutSeconds` passes or the store ends it; logs stream the node
agent's chunks the same way. exec and attach upgrade the connection to a WebSocket speaking
Kubernetes' channel protocols (`api.exec_stream`: v5, v4, v1 and their base64 forms), which is
what kubectl, the Python client and our CLI send: the node agent's session on one side, the
client's channels on the other. Each function takes the request handler whose connection it
streams on.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from minikube_py.api import errors, exec_stream
from minikube_py.api.exec_stream import CLOSE_SIGNAL, ERROR, RESIZE, STDERR, STDIN, STDOUT, ChannelSocket
from minikube_py.apiserver import conversion, portforward
from minikube_py.apiserver.pod_logs import LogNarrowing
from minikube_py.apiserver.routing import Route, flag, include_object_policy, integer, text

if TYPE_CHECKING:
    from minikube_py.apiserver.handler import ApiRequestHandler

log = logging.getLogger(__name__)


def _start_chunked(handler: "ApiRequestHandler", content_type: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()


def _send_chunk(handler: "ApiRequestHandler", data: bytes) -> None:
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def _end_chunked(handler: "ApiRequestHandler") -> None:
    handler.wfile.write(b"0\r\n\r\n")


def _event_line(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


def serve_watch(handler: "ApiRequestHandler", route: Route, query: dict) -> None:
    api_server = handler.server.api
    as_table = handler.table_requested()
    if as_table:
        include_object_policy(query)
    timeout = integer(query, "timeoutSeconds", minimum=0)
    deadline = time.monotonic() + timeout if timeout else None
    watch = api_server.registry.watch(route.info.plural, route.namespace, text(query, "resourceVersion"),
                                      text(query, "labelSelector"), text(query, "fieldSelector"))
    api_server.track_watch(watch, True)
    # A client that hangs up (kubectl get -w, Ctrl-C) must release this thread and its store
    # watcher: the hang-up detector closes the watch, which wakes `next` below. Nothing polls.
    api_server.hang_ups.follow(handler.connection, watch)
    handler.close_connection = True
    try:
        _start_chunked(handler, "application/json")
        while not watch.closed:
            wait = None
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
            try:
                event = watch.next(timeout=wait)
            except errors.ApiError as error:
                _send_chunk(handler, _event_line({"type": "ERROR", "object": error.to_status()}))
                break
            except Exception:  # a bug reading one change ends this watch with a Status, not the thread
                log.exception("a watch on %s failed", route.info.plural)
                status = errors.ApiError(f"the watch on {route.info.plural} failed; watch again "
                                         "(the daemon log has the details)").to_status()
                _send_chunk(handler, _event_line({"type": "ERROR", "object": status}))
                break
            if event is None:
                continue
            _send_chunk(handler, _event_line(_shape_event(handler, route, query, event, as_table)))
        _end_chunked(handler)
    except OSError:
        pass
    finally:
        api_server.hang_ups.forget(handler.connection)
        api_server.track_watch(watch, False)
        watch.close()


def _shape_event(handler: "ApiRequestHandler", route: Route, query: dict, event: dict, as_table: bool) -> dict:
    """The event as the client asked for it; one object that cannot be shown becomes an ERROR
    event for that object instead of ending the watch's thread."""
    if not as_table or event["type"] not in ("ADDED", "MODIFIED", "DELETED"):
        return conversion.watch_event_in(route.info, route.served, event)
    obj = event["object"]
    try:
        # Each event carries a Table of one row, as kube-apiserver sends them.
        return {"type": event["type"], "object": conversion.answer_in(route.info, route.served, handler.table(
            route.info.plural, [obj], query, obj["metadata"].get("resourceVersion")))}
    except Exception as error:
        log.exception("a watch event for %s could not be shown as a table row", route.info.plural)
        name = (obj.get("metadata") or {}).get("name") if isinstance(obj, dict) else None
        status = errors.ApiError(f"{route.info.plural} {name!r}: could not be shown as a table row "
                                 f"({type(error).__name__})").to_status()
        return {"type": "ERROR", "object": status}


def serve_logs(handler: "ApiRequestHandler", namespace: str, name: str, query: dict) -> None:
    handler.server.api.registry.get("pods", namespace, name)
    narrowing = LogNarrowing.of(query, name, flag(query, "timestamps"))
    node_chunks = iter(handler.node_proxy().logs(
        namespace, name, container=text(query, "container"), follow=flag(query, "follow"),
        tail_lines=integer(query, "tailLines", minimum=0), timestamps=narrowing.needs_timestamps,
        previous=flag(query, "previous")))
    chunks: Iterator[bytes] = narrowing.apply(node_chunks)
    # The first chunk is read before answering so that a bad container name is a Status.
    first = next(chunks, b"")
    handler.close_connection = True
    try:
        _start_chunked(handler, "text/plain")
        if first:
            _send_chunk(handler, first)
        for chunk in chunks:
            if chunk:
                _send_chunk(handler, chunk)
        _end_chunked(handler)
    except OSError:
        pass
    finally:
        for opened in (chunks, node_chunks):
            close = getattr(opened, "close", None)
            if close is not None:
                close()


# After the exit status is sent, how long the client may take to read the rest and close.
FINISH_SECONDS = 60.0


@dataclass(frozen=True)
class RemoteCommandOptions:
    """What a client asked of an exec or attach (PodExecOptions / PodAttachOptions)."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    container: str | None
    command: list[str]

    @classmethod
    def of(cls, query: dict, exec_command: bool) -> "RemoteCommandOptions":
        command = query.get("command") or []
        if exec_command and not command:
            raise errors.BadRequest("exec: at least one command argument is required (?command=...)")
        for index, argument in enumerate(command):
            if "\0" in argument:
                raise errors.BadRequest(f"exec: command[{index}] contains a NUL character; a process argument "
                                        "cannot hold one")
        options = cls(stdin=flag(query, "stdin"), stdout=flag(query, "stdout"), stderr=flag(query, "stderr"),
                      tty=flag(query, "tty"), container=text(query, "container"), command=list(command))
        if not (options.stdin or options.stdout or options.stderr):
            raise errors.BadRequest("you must specify at least 1 of stdin, stdout, stderr")
        return options


def _is_websocket_request(handler: "ApiRequestHandler") -> bool:
    connection = [part.strip().lower() for part in (handler.headers.get("Connection") or "").split(",")]
    return (handler.headers.get("Upgrade") or "").lower() == "websocket" and "upgrade" in connection


def _upgrade(handler: "ApiRequestHandler", supported: dict) -> ChannelSocket:
    """Answer a WebSocket upgrade with 101 and the chosen channel protocol; a request that is not
    one gets a Status (kubectl then says why)."""
    if not _is_websocket_request(handler):
        raise errors.BadRequest("Upgrade request required: exec, attach and portforward are served over "
                                "WebSocket (Upgrade: websocket) with the v5.channel.k8s.io, v4.channel.k8s.io or "
                                "channel.k8s.io subprotocol; SPDY is not supported")
    key = handler.headers.get("Sec-WebSocket-Key") or ""
    if not key or handler.headers.get("Sec-WebSocket-Version") != exec_stream.WEBSOCKET_GUID_VERSION:
        raise errors.BadRequest("a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13")
    try:
        protocol = exec_stream.choose_protocol(
            exec_stream.offered_protocols(handler.headers.get("Sec-WebSocket-Protocol")), supported)
    except ValueError as error:
        raise errors.BadRequest(str(error)) from None
    answer, channels = exec_stream.accept(handler.connection, key, protocol, reader=handler.rfile.read1)
    handler.close_connection = True
    # A session may sit idle for as long as its user likes: no read timeout from here on. A client
    # that stops reading gets its writes bounded instead, so it cannot hold a thread forever.
    handler.connection.settimeout(None)
    stall = handler.server.api.stream_write_timeout
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                  struct.pack("ll", int(stall), int((stall % 1) * 1_000_000)))
    handler.connection.sendall(answer)
    return channels


def _check_container(pod: dict, container: str | None) -> None:
    """The API server's own check of the container name, made before any upgrade (so a client
    that retries over another protocol hears the same answer)."""
    spec = pod.get("spec") or {}
    names = [c.get("name") for key in ("containers", "initContainers", "ephemeralContainers")
             for c in spec.get(key) or []]
    if container is not None and container not in names:
        raise errors.BadRequest(f"container {container} is not valid for pod {pod['metadata']['name']}")


def serve_exec(handler: "ApiRequestHandler", namespace: str, name: str, query: dict) -> None:
    pod = handler.server.api.registry.get("pods", namespace, name)
    options = RemoteCommandOptions.of(query, exec_command=True)
    _check_container(pod, options.container)
    if not _is_websocket_request(handler):
        _upgrade(handler, exec_stream.REMOTE_COMMAND_PROTOCOLS)  # raises the Status saying why
    session = handler.node_proxy().exec(namespace, name, options.container, options.command, tty=options.tty)
    _serve_remote_command(handler, session, options)


def serve_attach(handler: "ApiRequestHandler", namespace: str, name: str, query: dict) -> None:
    pod = handler.server.api.registry.get("pods", namespace, name)
    options = RemoteCommandOptions.of(query, exec_command=False)
    _check_container(pod, options.container)
    if not _is_websocket_request(handler):
        _upgrade(handler, exec_stream.REMOTE_COMMAND_PROTOCOLS)
    session = handler.node_proxy().attach(namespace, name, options.container, stdin=options.stdin,
                                          tty=options.tty)
    _serve_remote_command(handler, session, options)


def serve_portforward(handler: "ApiRequestHandler", namespace: str, name: str, query: dict) -> None:
    handler.server.api.registry.get("pods", namespace, name)
    ports = portforward.parse_ports(query)
    offered = exec_stream.offered_protocols(handler.headers.get("Sec-WebSocket-Protocol"))
    if not ports and portforward.SPDY_TUNNEL not in offered:
        raise errors.BadRequest("port-forward: at least one port is required (?ports=8080)")
    proxy = handler.node_proxy()
    channels = _upgrade(handler, portforward.PROTOCOLS)

    def dial(port: int) -> socket.socket:
        return proxy.port_forward(namespace, name, port)

    try:
        if channels.protocol.tunnel:
            portforward.SpdySession(channels, dial).serve()
        else:
            portforward.serve_channel_ports(channels, ports, dial)
        channels.close()
    except OSError:
        pass
    except Exception:  # after the upgrade no Status can be sent: log it and close
        log.exception("a port-forward to pod %s/%s failed", namespace, name)
        channels.close(1011, "internal error; the daemon log has the details")
    finally:
        channels.shutdown()


def _serve_remote_command(handler: "ApiRequestHandler", session, options: RemoteCommandOptions) -> None:
    """Run one exec or attach session over the upgraded connection, then end it as the API server
    does: the exit status on the error channel, a close frame, and a bounded wait for the client
    to read the rest and close."""
    try:
        channels = _upgrade(handler, exec_stream.REMOTE_COMMAND_PROTOCOLS)
    except BaseException:
        session.kill()
        raise
    finished = threading.Event()
    forwarder = threading.Thread(target=_forward_input, args=(channels, session, options, finished),
                                 name="stream-input", daemon=True)
    try:
        # An empty message on the lowest channel the client reads tells it the stream is up.
        channels.send(STDOUT if options.stdout else STDERR if options.stderr else ERROR, b"")
        if not options.stdin:
            session.close_stdin()
        forwarder.start()
        for channel, data in session.read():
            if channel == STDOUT and options.stdout or channel == STDERR and options.stderr:
                channels.send(channel, data)
            elif channel == STDERR and options.tty and options.stdout:
                channels.send(STDOUT, data)
        code = session.wait()
        finished.set()
        status = exec_stream.exit_status(code, options.command or None)
        if channels.protocol.status_document:
            channels.send_json(ERROR, status)
        elif code != 0:
            channels.send(ERROR, status["message"].encode())
        channels.close()
        forwarder.join(FINISH_SECONDS)
    except OSError:
        pass  # the client left or stopped reading: the session ends below
    finally:
        finished.set()
        session.kill()
        channels.shutdown()
        if forwarder.is_alive():
            forwarder.join(FINISH_SECONDS)


def _forward_input(channels: ChannelSocket, session, options: RemoteCommandOptions, finished: threading.Event) -> None:
    """The client's messages to the session: stdin, resizes, v5's close of stdin. A client that
    hangs up before the session ends ends it."""
    stdin_open = options.stdin
    try:
        while (message := channels.receive()) is not None:
            channel, data = message
            if channel == STDIN and stdin_open and data:
                try:
                    session.write_stdin(data)
                except OSError:  # the process closed its input or ended: drop the rest
                    stdin_open = False
            elif channel == RESIZE and options.tty:
                try:
                    width, height = exec_stream.parse_resize(data)
                except ValueError:
                    log.debug("ignored a malformed resize message: %r", data[:64])
                    continue
                session.resize(width, height)
            elif channel == CLOSE_SIGNAL and channels.protocol.close_signal and data[:1] == bytes([STDIN]):
                if stdin_open:
                    stdin_open = False
                    session.close_stdin()
    except OSError:
        pass
    except Exception:  # one session's bug must not take the server's thread with it
        log.exception("forwarding a stream's input failed")
    if not finished.is_set():
        session.kill()
