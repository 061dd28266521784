"""Streaming responses: watches, pod logs and exec, each holding its connection open.

A watch streams one JSON event per line over a chunked response until the client hangs up (the
`HangUpDetector` notices), `timeoutSeconds` passes or the store ends it; logs stream the node
agent's chunks the same way; exec switches the connection to the framed protocol of
`api.exec_stream`. Each function takes the request handler whose connection it streams on. A
WebSocket transport for exec (issue 12) is one more function here, chosen in `serve_exec` by the
`Upgrade` header, with the same `NodeProxy` session behind it.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Iterator

from minikube_py.api import errors, exec_stream
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
        return event
    obj = event["object"]
    try:
        # Each event carries a Table of one row, as kube-apiserver sends them.
        return {"type": event["type"], "object": handler.table(
            route.info.plural, [obj], query, obj["metadata"].get("resourceVersion"))}
    except Exception as error:
        log.exception("a watch event for %s could not be shown as a table row", route.info.plural)
        name = (obj.get("metadata") or {}).get("name") if isinstance(obj, dict) else None
        status = errors.ApiError(f"{route.info.plural} {name!r}: could not be shown as a table row "
                                 f"({type(error).__name__})").to_status()
        return {"type": "ERROR", "object": status}


def serve_logs(handler: "ApiRequestHandler", namespace: str, name: str, query: dict) -> None:
    handler.server.api.registry.get("pods", namespace, name)
    chunks: Iterator[bytes] = iter(handler.node_proxy().logs(
        namespace, name, container=text(query, "container"), follow=flag(query, "follow"),
        tail_lines=integer(query, "tailLines", minimum=0), timestamps=flag(query, "timestamps"),
        previous=flag(query, "previous")))
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
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def serve_exec(handler: "ApiRequestHandler", namespace: str, name: str, query: dict) -> None:
    handler.server.api.registry.get("pods", namespace, name)
    if (handler.headers.get("Upgrade") or "").lower() != exec_stream.EXEC_UPGRADE:
        raise errors.BadRequest(f"exec needs a connection upgrade: send 'Connection: Upgrade' and "
                                f"'Upgrade: {exec_stream.EXEC_UPGRADE}'")
    command = query.get("command") or []
    if not command:
        raise errors.BadRequest("exec: at least one command argument is required (?command=...)")
    for index, argument in enumerate(command):
        if "\0" in argument:
            raise errors.BadRequest(f"exec: command[{index}] contains a NUL character; a process argument "
                                    "cannot hold one")
    session = handler.node_proxy().exec(namespace, name, text(query, "container"), command,
                                        tty=flag(query, "tty"))
    handler.close_connection = True
    handler.send_response(101)
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Upgrade", exec_stream.EXEC_UPGRADE)
    handler.end_headers()
    # An exec may sit idle for as long as its user likes: no read timeout from here on.
    handler.connection.settimeout(None)
    if not flag(query, "stdin"):
        session.close_stdin()
    forwarder = threading.Thread(target=_forward_stdin, args=(handler, session), name="exec-stdin", daemon=True)
    forwarder.start()
    try:
        for channel, data in session.read():
            exec_stream.write_frame(handler.wfile, channel, data)
        exec_stream.write_frame(handler.wfile, exec_stream.EXIT_CODE, str(session.wait()).encode())
    except OSError:
        session.kill()
    finally:
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _forward_stdin(handler: "ApiRequestHandler", session) -> None:
    """Frames from the client to the process; a vanished client kills the process."""
    try:
        while (frame := exec_stream.read_frame(handler.rfile)) is not None:
            channel, data = frame
            if channel == exec_stream.STDIN:
                session.write_stdin(data)
            elif channel == exec_stream.STDIN_CLOSED:
                session.close_stdin()
        session.kill()
    except (OSError, ValueError):
        session.kill()
