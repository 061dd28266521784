"""The HTTP face of the Registry: Kubernetes' REST paths on a unix socket (and optionally TCP).

A thin router: it parses `/api/v1/namespaces/{ns}/pods/{name}/status`-shaped paths and query
parameters, calls the Registry method of the same meaning, and writes the result as JSON, or the
error as a Kubernetes `Status` with its HTTP code. Keeping the paths, the discovery documents and
the Status shape exactly Kubernetes' is what lets the real `kubectl --server` talk to it. Watches
stream one JSON event per line over a chunked response. Pod logs, exec and inspect are served by
the node agent through the `NodeProxy` it registers; exec switches the connection to a small
framed protocol (one byte channel, four bytes big-endian length, data; channels 0 stdin,
1 stdout, 2 stderr, 3 exit code, 4 stdin closed). Standard library only: `ThreadingHTTPServer`,
one thread per connection, HTTP/1.1 keep-alive. A GET whose Accept header asks for
`application/json;as=Table;v=v1;g=meta.k8s.io` (what `kubectl get` sends) is answered with a
`meta.k8s.io/v1` Table from `api.printers`, which is what lets kubectl print our columns; in a
watch, each event's object is then a Table of one row.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

from minikube_py import __version__, api
from minikube_py.api import errors, printers
from minikube_py.apiserver.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH

log = logging.getLogger(__name__)

KUBERNETES_VERSION = {"major": "1", "minor": "32"}
EXEC_UPGRADE = "minikube-py-exec"
STDIN, STDOUT, STDERR, EXIT_CODE, STDIN_CLOSED = 0, 1, 2, 3, 4
FRAME_HEADER = struct.Struct(">BI")
# The accept loop wakes this often when idle; `stop()` does not wait for it (see _shut_down_now).
SERVE_POLL_SECONDS = 5.0
PATCH_TYPES = {MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH, "application/apply-patch+yaml"}
OBJECT_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class ServiceUnavailable(errors.ApiError):
    code = 503
    reason = "ServiceUnavailable"


class UnsupportedMediaType(errors.ApiError):
    code = 415
    reason = "UnsupportedMediaType"


def write_frame(stream, channel: int, data: bytes) -> None:
    stream.write(FRAME_HEADER.pack(channel, len(data)) + data)


def read_frame(stream) -> tuple[int, bytes] | None:
    """The next frame from a file-like stream, or None at end of stream."""
    header = _read_exactly(stream, FRAME_HEADER.size)
    if header is None:
        return None
    channel, length = FRAME_HEADER.unpack(header)
    data = _read_exactly(stream, length) if length else b""
    return None if data is None else (channel, data)


def _read_exactly(stream, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# -- discovery ----------------------------------------------------------------------------------

def version_info() -> dict:
    return {**KUBERNETES_VERSION, "gitVersion": f"v1.32.0-minikube-py-{__version__}", "gitCommit": "",
            "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z", "goVersion": "python",
            "compiler": "cpython", "platform": "linux/amd64"}


def _group_versions() -> dict[str, list]:
    by_version: dict[str, list] = {}
    for info in api.RESOURCES.values():
        by_version.setdefault(info.api_version, []).append(info)
    return by_version


def api_resource_list(group_version: str) -> dict:
    """The APIResourceList of one group version, with the subresources we serve."""
    resources = []
    for info in _group_versions().get(group_version, []):
        entry = {"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                 "kind": info.kind, "verbs": OBJECT_VERBS, "shortNames": list(info.short_names)}
        if info.plural in ("pods", "replicasets", "deployments"):
            entry["categories"] = ["all"]
        resources.append(entry)
        if info.plural != "events":
            resources.append({"name": f"{info.plural}/status", "singularName": "", "namespaced": info.namespaced,
                              "kind": info.kind, "verbs": ["get", "patch", "update"]})
        if info.plural in ("replicasets", "deployments"):
            resources.append({"name": f"{info.plural}/scale", "singularName": "", "namespaced": True,
                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                              "verbs": ["get", "patch", "update"]})
        if info.plural == "pods":
            resources += [
                {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
                {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions",
                 "verbs": ["create", "get"]},
                {"name": "pods/binding", "singularName": "", "namespaced": True, "kind": "Binding",
                 "verbs": ["create"]},
                {"name": "pods/inspect", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
            ]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def api_group_list() -> dict:
    groups = []
    for group_version in _group_versions():
        if "/" in group_version:
            name, version = group_version.split("/")
            entry = {"groupVersion": group_version, "version": version}
            groups.append({"name": name, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_versions() -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}


def openapi_v3_index() -> dict:
    """Where the per-group-version OpenAPI v3 documents are (`/openapi/v3`)."""
    paths = {}
    for group_version in _group_versions():
        prefix = "api/v1" if group_version == "v1" else f"apis/{group_version}"
        paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}"}
    return {"paths": paths}


def openapi_v3_document(group_version: str) -> dict:
    """A deliberately small OpenAPI v3 document: each object path with the
    `x-kubernetes-group-version-kind` and the `fieldValidation` parameter of its PATCH. kubectl
    reads exactly this to learn that the server validates fields itself (it rejects unknown
    fields), and then sends manifests without validating them against a schema first."""
    paths = {}
    for info in _group_versions()[group_version]:
        group, _, version = info.api_version.rpartition("/")
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        scope = "/namespaces/{namespace}" if info.namespaced else ""
        operation = {"x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": info.kind},
                     "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                     "responses": {"200": {"description": "OK"}}}
        paths[f"{base}{scope}/{info.plural}/{{name}}"] = {"patch": operation}
    return {"openapi": "3.0.0", "info": {"title": "minikube-py", "version": KUBERNETES_VERSION["minor"]},
            "paths": paths, "components": {"schemas": {}}}


# -- content negotiation ------------------------------------------------------------------------

TABLE_MEDIA_PARAMETERS = {"as": "Table", "v": "v1", "g": "meta.k8s.io"}


def wants_table(accept: str | None) -> bool:
    """Whether the first alternative of an Accept header that we can serve is a v1 Table.

    kubectl sends `application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;
    v=v1beta1;g=meta.k8s.io,application/json`; we serve the v1 Table and plain JSON, and skip
    what we do not (v1beta1 Tables, protobuf). Without any servable alternative: plain JSON.
    """
    for alternative in (accept or "").split(","):
        media_type, *parameter_texts = [piece.strip() for piece in alternative.split(";")]
        parameters = dict(text.partition("=")[::2] for text in parameter_texts)
        parameters.pop("q", None)
        if media_type not in ("application/json", "application/*", "*/*"):
            continue
        if not parameters.get("as"):
            return False
        if {key: parameters.get(key) for key in TABLE_MEDIA_PARAMETERS} == TABLE_MEDIA_PARAMETERS:
            return True
    return False


def include_object_policy(query: dict) -> str:
    policy = _text(query, "includeObject") or printers.INCLUDE_METADATA
    if policy not in printers.INCLUDE_POLICIES:
        raise errors.BadRequest(f"query parameter includeObject={policy!r}: must be one of "
                                f"{', '.join(printers.INCLUDE_POLICIES)}")
    return policy


# -- routing ------------------------------------------------------------------------------------

@dataclass
class Route:
    info: Any
    namespace: str | None
    name: str | None
    subresource: str | None


def _not_found(path: str) -> errors.NotFound:
    return errors.NotFound(f"the server could not find the requested resource (path {path})")


def parse_route(path: str) -> Route | dict:
    """A resource route, or the discovery document the path names. Raises NotFound."""
    parts = [part for part in path.split("/") if part]
    if parts == ["version"]:
        return version_info()
    if parts == ["api"]:
        return api_versions()
    if parts == ["apis"]:
        return api_group_list()
    if parts[:2] == ["openapi", "v3"]:
        if len(parts) == 2:
            return openapi_v3_index()
        group_version = "v1" if parts[2:] == ["api", "v1"] else "/".join(parts[3:])
        if parts[2] in ("api", "apis") and group_version in _group_versions():
            return openapi_v3_document(group_version)
        raise _not_found(path)
    if parts[:2] == ["api", "v1"]:
        group_version, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise _not_found(path)
    if group_version not in _group_versions():
        raise _not_found(path)
    if not rest:
        return api_resource_list(group_version)
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        contained = api.RESOURCES.get(rest[2])
        if contained is not None and contained.namespaced and contained.api_version == group_version:
            namespace, rest = rest[1], rest[2:]
    info = api.RESOURCES.get(rest[0])
    if info is None or info.api_version != group_version or len(rest) > 3:
        raise _not_found(path)
    if namespace is not None and not info.namespaced:
        raise _not_found(path)
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    return Route(info, namespace, name, subresource)


def _flag(query: dict, key: str) -> bool:
    return query.get(key, [""])[-1].lower() in ("true", "1")


def _text(query: dict, key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def _integer(query: dict, key: str) -> int | None:
    text = _text(query, key)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise errors.BadRequest(f"query parameter {key}={text!r}: must be an integer") from None


# -- the handler --------------------------------------------------------------------------------

class ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "minikube-py"
    server: "_Serving"

    def setup(self) -> None:
        # Small JSON writes go straight out; Nagle would delay every response on TCP.
        self.disable_nagle_algorithm = self.request.family != socket.AF_UNIX
        super().setup()
        self.server.api.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api.track(self.connection, False)

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.requestline, format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- plumbing

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if "protobuf" in content_type or "cbor" in content_type:
            raise UnsupportedMediaType(
                f"request bodies must be JSON, not {content_type}; with kubectl, create objects from "
                "manifests (kubectl apply -f / create -f), which send JSON")
        try:
            return json.loads(raw)
        except ValueError as error:
            raise errors.BadRequest(f"the request body is not valid JSON: {error}") from None

    def _send_json(self, code: int, document: Any) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            body = self._read_body()
            route = parse_route(url.path)
            if isinstance(route, dict):
                if method != "GET":
                    raise errors.MethodNotAllowed(f"{method} is not supported on {url.path}")
                self._send_json(200, route)
                return
            if _text(query, "dryRun"):
                raise errors.BadRequest("dryRun is not supported by minikube-py; run without --dry-run=server")
            self._serve(method, route, query, body)
        except errors.ApiError as error:
            self._send_error(error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # a bug must answer 500, not kill the connection silently
            log.exception("%s %s failed", method, self.path)
            self._send_error(errors.ApiError(f"internal error: {error}"))

    def _send_error(self, error: errors.ApiError) -> None:
        try:
            self._send_json(error.code, error.to_status())
        except OSError:
            self.close_connection = True

    def _serve(self, method: str, route: Route, query: dict, body: Any) -> None:
        registry = self.server.api.registry
        info, namespace, name, subresource = route.info, route.namespace, route.name, route.subresource
        resource = info.plural
        if name is None:
            if method == "GET":
                label_selector, field_selector = _text(query, "labelSelector"), _text(query, "fieldSelector")
                if _flag(query, "watch"):
                    self._serve_watch(route, query)
                else:
                    listing = registry.list(resource, namespace, label_selector, field_selector)
                    if self._table_requested():
                        listing = self._table(resource, listing["items"], query,
                                              listing["metadata"].get("resourceVersion"))
                    self._send_json(200, listing)
            elif method == "POST":
                self._send_json(201, registry.create(resource, namespace, body))
            else:
                raise errors.MethodNotAllowed(f"{method} is not supported on a collection of {resource}")
            return
        if subresource is None:
            if method == "GET":
                obj = registry.get(resource, namespace, name)
                if self._table_requested():
                    obj = self._table(resource, [obj], query, obj["metadata"].get("resourceVersion"))
                self._send_json(200, obj)
            elif method == "PUT":
                self._send_json(200, registry.replace(resource, namespace, name, body))
            elif method == "PATCH":
                self._send_json(200, registry.patch(resource, namespace, name, body, self._patch_type()))
            elif method == "DELETE":
                self._send_json(200, self._delete(resource, namespace, name, query, body))
            else:
                raise errors.MethodNotAllowed(f"{method} is not supported on {resource}/{name}")
            return
        handler = {
            ("status", "GET"): lambda: registry.get(resource, namespace, name),
            ("status", "PUT"): lambda: registry.replace_status(resource, namespace, name, body),
            ("status", "PATCH"): lambda: registry.patch_status(resource, namespace, name, body, self._patch_type()),
            ("scale", "GET"): lambda: registry.get_scale(resource, namespace, name),
            ("scale", "PUT"): lambda: registry.replace_scale(resource, namespace, name, body),
            ("scale", "PATCH"): lambda: registry.patch_scale(resource, namespace, name, body, self._patch_type()),
        }.get((subresource, method))
        if handler is not None:
            self._send_json(200, handler())
        elif resource == "pods" and (subresource, method) == ("binding", "POST"):
            target = (body or {}).get("target") or {}
            if not target.get("name"):
                raise errors.BadRequest("binding: target.name (the node) is required")
            self._send_json(201, registry.bind(namespace, name, target["name"]))
        elif resource == "pods" and (subresource, method) == ("log", "GET"):
            self._serve_logs(namespace, name, query)
        elif resource == "pods" and subresource == "exec" and method in ("POST", "GET"):
            self._serve_exec(namespace, name, query)
        elif resource == "pods" and (subresource, method) == ("inspect", "GET"):
            registry.get(resource, namespace, name)
            self._send_json(200, self._node_proxy().inspect(namespace, name))
        else:
            raise _not_found(self.path)

    def _table_requested(self) -> bool:
        return wants_table(self.headers.get("Accept"))

    def _table(self, resource: str, objects: list[dict], query: dict, resource_version: str | None) -> dict:
        return printers.table(resource, objects, self.server.api.registry.clock.now(), resource_version,
                              include_object_policy(query))

    def _patch_type(self) -> str:
        content_type = (self.headers.get("Content-Type") or MERGE_PATCH).split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            raise UnsupportedMediaType(f"the body of a PATCH must be one of {', '.join(sorted(PATCH_TYPES))}; "
                                       f"got {content_type}")
        if content_type == "application/apply-patch+yaml":
            raise UnsupportedMediaType("server-side apply is not supported by minikube-py; use client-side apply")
        return content_type

    def _delete(self, resource: str, namespace: str | None, name: str, query: dict, body: Any) -> dict:
        options = body if isinstance(body, dict) else {}
        propagation = _text(query, "propagationPolicy") or options.get("propagationPolicy")
        grace = _integer(query, "gracePeriodSeconds")
        if grace is None:
            grace = options.get("gracePeriodSeconds")
        if options.get("orphanDependents") is True and propagation is None:
            propagation = "Orphan"
        return self.server.api.registry.delete(resource, namespace, name, propagation, grace,
                                               preconditions=options.get("preconditions"))

    def _serve_watch(self, route: Route, query: dict) -> None:
        registry = self.server.api.registry
        as_table = self._table_requested()
        if as_table:
            include_object_policy(query)
        timeout = _integer(query, "timeoutSeconds")
        deadline = time.monotonic() + timeout if timeout else None
        watch = registry.watch(route.info.plural, route.namespace, _text(query, "resourceVersion"),
                               _text(query, "labelSelector"), _text(query, "fieldSelector"))
        self.server.api.track_watch(watch, True)
        # A client that hangs up (kubectl get -w, Ctrl-C) must release this thread and its store
        # watcher: the hang-up detector closes the watch, which wakes `next` below. Nothing polls.
        self.server.api.hang_ups.follow(self.connection, watch)
        self.close_connection = True
        try:
            self._start_stream("application/json")
            while not watch.closed:
                wait = None
                if deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        break
                try:
                    event = watch.next(timeout=wait)
                except errors.ApiError as error:
                    event = {"type": "ERROR", "object": error.to_status()}
                    self._send_chunk(json.dumps(event, separators=(",", ":")).encode() + b"\n")
                    break
                if event is None:
                    continue
                if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    # Each event carries a Table of one row, as kube-apiserver sends them.
                    obj = event["object"]
                    event = {"type": event["type"], "object": self._table(
                        route.info.plural, [obj], query, obj["metadata"].get("resourceVersion"))}
                self._send_chunk(json.dumps(event, separators=(",", ":")).encode() + b"\n")
            self._end_stream()
        except OSError:
            pass
        finally:
            self.server.api.hang_ups.forget(self.connection)
            self.server.api.track_watch(watch, False)
            watch.close()

    def _node_proxy(self):
        proxy = self.server.api.node_proxy
        if proxy is None:
            raise ServiceUnavailable("no node agent is connected to serve pod logs, exec or inspect; "
                                     "is the node running? (minikube-py status)")
        return proxy

    def _serve_logs(self, namespace: str, name: str, query: dict) -> None:
        self.server.api.registry.get("pods", namespace, name)
        chunks: Iterator[bytes] = iter(self._node_proxy().logs(
            namespace, name, container=_text(query, "container"), follow=_flag(query, "follow"),
            tail_lines=_integer(query, "tailLines"), timestamps=_flag(query, "timestamps"),
            previous=_flag(query, "previous")))
        # The first chunk is read before answering so that a bad container name is a Status.
        first = next(chunks, b"")
        self.close_connection = True
        try:
            self._start_stream("text/plain")
            if first:
                self._send_chunk(first)
            for chunk in chunks:
                if chunk:
                    self._send_chunk(chunk)
            self._end_stream()
        except OSError:
            pass
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _serve_exec(self, namespace: str, name: str, query: dict) -> None:
        self.server.api.registry.get("pods", namespace, name)
        if (self.headers.get("Upgrade") or "").lower() != EXEC_UPGRADE:
            raise errors.BadRequest(f"exec needs a connection upgrade: send 'Connection: Upgrade' and "
                                    f"'Upgrade: {EXEC_UPGRADE}'")
        command = query.get("command") or []
        if not command:
            raise errors.BadRequest("exec: at least one command argument is required (?command=...)")
        session = self._node_proxy().exec(namespace, name, _text(query, "container"), command,
                                          tty=_flag(query, "tty"))
        self.close_connection = True
        self.send_response(101)
        self.send_header("Connection", "Upgrade")
        self.send_header("Upgrade", EXEC_UPGRADE)
        self.end_headers()
        if not _flag(query, "stdin"):
            session.close_stdin()
        forwarder = threading.Thread(target=self._forward_stdin, args=(session,), name="exec-stdin", daemon=True)
        forwarder.start()
        try:
            for channel, data in session.read():
                write_frame(self.wfile, channel, data)
            write_frame(self.wfile, EXIT_CODE, str(session.wait()).encode())
        except OSError:
            session.kill()
        finally:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _forward_stdin(self, session) -> None:
        """Frames from the client to the process; a vanished client kills the process."""
        try:
            while (frame := read_frame(self.rfile)) is not None:
                channel, data = frame
                if channel == STDIN:
                    session.write_stdin(data)
                elif channel == STDIN_CLOSED:
                    session.close_stdin()
            session.kill()
        except (OSError, ValueError):
            session.kill()


class _Serving(ThreadingHTTPServer):
    daemon_threads = True
    api: "ApiHttpServer"


class _UnixServing(_Serving):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0


class HangUpDetector:
    """One thread, one epoll set, for every streaming watch: when a watch's client hangs up (its
    socket turns readable at end of file), the watch is closed, which wakes the server thread
    blocked in it. An idle watch therefore costs no wake-ups at all."""

    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self._wakeup_read, self._wakeup_write = os.pipe()
        self._selector.register(self._wakeup_read, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="api-watch-hang-ups", daemon=True)
        self._thread.start()

    def follow(self, connection: socket.socket, watch) -> None:
        with self._lock:
            self._selector.register(connection, selectors.EVENT_READ, watch)
        os.write(self._wakeup_write, b"x")

    def forget(self, connection: socket.socket) -> None:
        with self._lock:
            try:
                self._selector.unregister(connection)
            except (KeyError, ValueError):
                pass  # already dropped when its client hung up

    def _run(self) -> None:
        while self._running:
            for key, _ in self._selector.select():
                if key.data is None:
                    os.read(self._wakeup_read, 4096)
                    continue
                # Readable: end of file (hung up) or stray bytes from the client; a watch
                # reads nothing more from its client either way, so stop following it.
                try:
                    hung_up = key.fileobj.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    continue
                except OSError:
                    hung_up = True
                self.forget(key.fileobj)
                if hung_up:
                    key.data.close()

    def stop(self) -> None:
        self._running = False
        os.write(self._wakeup_write, b"x")
        self._thread.join()
        self._selector.close()
        os.close(self._wakeup_read)
        os.close(self._wakeup_write)


class ApiHttpServer:
    """The API on `socket_path` (mode 0600) and, with `port`, on 127.0.0.1:port. `node_proxy`
    (the node agent) serves pod logs, exec and inspect; it may be set later."""

    def __init__(self, registry, socket_path: str, port: int | None = None, node_proxy=None):
        self.registry = registry
        self.socket_path = socket_path
        self.port = port
        self.node_proxy = node_proxy
        self._servers: list[_Serving] = []
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._watches: set = set()
        self._lock = threading.Lock()
        self.hang_ups: HangUpDetector | None = None

    def track(self, connection: socket.socket, active: bool) -> None:
        with self._lock:
            (self._connections.add if active else self._connections.discard)(connection)

    def track_watch(self, watch, active: bool) -> None:
        with self._lock:
            (self._watches.add if active else self._watches.discard)(watch)

    def _serve(self, server: _Serving, label: str) -> None:
        server.api = self
        self._servers.append(server)
        thread = threading.Thread(target=server.serve_forever, args=(SERVE_POLL_SECONDS,),
                                  name=f"api-{label}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def start(self) -> None:
        _remove_stale_socket(self.socket_path)
        unix_server = _UnixServing(self.socket_path, ApiRequestHandler, bind_and_activate=False)
        try:
            unix_server.server_bind()
            os.chmod(self.socket_path, 0o600)
            unix_server.server_activate()
        except OSError:
            unix_server.server_close()
            raise
        self.hang_ups = HangUpDetector()
        self._serve(unix_server, "unix")
        if self.port is not None:
            tcp_server = _Serving(("127.0.0.1", self.port), ApiRequestHandler)
            self.port = tcp_server.server_address[1]
            self._serve(tcp_server, "tcp")

    def stop(self) -> None:
        for server in self._servers:
            _shut_down_now(server)
            server.server_close()
        with self._lock:
            watches, connections = list(self._watches), list(self._connections)
        for watch in watches:
            watch.close()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join()
        self._servers.clear()
        self._threads.clear()
        if self.hang_ups is not None:
            self.hang_ups.stop()
            self.hang_ups = None
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "ApiHttpServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _shut_down_now(server: _Serving) -> None:
    """`shutdown()` waits for the accept loop's next wake-up; a connection wakes it at once."""
    stopper = threading.Thread(target=server.shutdown, name="api-shutdown")
    stopper.start()
    while stopper.is_alive():
        poke = socket.socket(server.address_family, socket.SOCK_STREAM)
        try:
            poke.connect(server.server_address)
        except OSError:
            pass
        finally:
            poke.close()
        stopper.join(0.05)


def _remove_stale_socket(path: str) -> None:
    """Remove a socket left by a dead server; refuse to steal one a live server answers on."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(f"another API server is listening on {path}; stop it (minikube-py stop) first")
