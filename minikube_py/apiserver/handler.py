"""The request handler: one HTTP request in, one Registry call, one JSON answer out.

`ApiRequestHandler` reads the body, resolves the path with `routing`, calls the Registry method
of the same meaning and writes the result as JSON, or the error as a Kubernetes `Status` with its
HTTP code; streaming requests (watch, logs, exec) are handed to `streams`. A GET whose Accept
header asks for `application/json;as=Table;v=v1;g=meta.k8s.io` (what `kubectl get` sends) is
answered with a `meta.k8s.io/v1` Table from `api.printers`, which is what lets kubectl print our
columns. Standard library only: `http.server`, one thread per connection, HTTP/1.1 keep-alive.
"""

from __future__ import annotations

import json
import logging
import socket
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from minikube_py.api import errors, printers
from minikube_py.apiserver import streams
from minikube_py.apiserver.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from minikube_py.apiserver.routing import (
    Route, include_object_policy, integer, not_found, parse_route, text, wants_table)

if TYPE_CHECKING:
    from minikube_py.apiserver.server import ApiHttpServer

log = logging.getLogger(__name__)

PATCH_TYPES = {MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH, "application/apply-patch+yaml"}


class ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "minikube-py"

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
            raise errors.UnsupportedMediaType(
                f"request bodies must be JSON, not {content_type}; with kubectl, create objects from "
                "manifests (kubectl apply -f / create -f), which send JSON")
        try:
            return json.loads(raw)
        except ValueError as error:
            raise errors.BadRequest(f"the request body is not valid JSON: {error}") from None

    def send_json(self, code: int, document: Any) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            body = self._read_body()
            route = parse_route(url.path)
            if isinstance(route, dict):
                if method != "GET":
                    raise errors.MethodNotAllowed(f"{method} is not supported on {url.path}")
                self.send_json(200, route)
                return
            if text(query, "dryRun"):
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
            self.send_json(error.code, error.to_status())
        except OSError:
            self.close_connection = True

    def _serve(self, method: str, route: Route, query: dict, body: Any) -> None:
        registry = self.server.api.registry
        info, namespace, name, subresource = route.info, route.namespace, route.name, route.subresource
        resource = info.plural
        if name is None:
            if method == "GET":
                label_selector, field_selector = text(query, "labelSelector"), text(query, "fieldSelector")
                if query.get("watch", [""])[-1].lower() in ("true", "1"):
                    streams.serve_watch(self, route, query)
                else:
                    listing = registry.list(resource, namespace, label_selector, field_selector)
                    if self.table_requested():
                        listing = self.table(resource, listing["items"], query,
                                             listing["metadata"].get("resourceVersion"))
                    self.send_json(200, listing)
            elif method == "POST":
                self.send_json(201, registry.create(resource, namespace, body))
            else:
                raise errors.MethodNotAllowed(f"{method} is not supported on a collection of {resource}")
            return
        if subresource is None:
            if method == "GET":
                obj = registry.get(resource, namespace, name)
                if self.table_requested():
                    obj = self.table(resource, [obj], query, obj["metadata"].get("resourceVersion"))
                self.send_json(200, obj)
            elif method == "PUT":
                self.send_json(200, registry.replace(resource, namespace, name, body))
            elif method == "PATCH":
                self.send_json(200, registry.patch(resource, namespace, name, body, self._patch_type()))
            elif method == "DELETE":
                self.send_json(200, self._delete(resource, namespace, name, query, body))
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
            self.send_json(200, handler())
        elif resource == "pods" and (subresource, method) == ("binding", "POST"):
            target = (body or {}).get("target") or {}
            if not target.get("name"):
                raise errors.BadRequest("binding: target.name (the node) is required")
            self.send_json(201, registry.bind(namespace, name, target["name"]))
        elif resource == "pods" and (subresource, method) == ("log", "GET"):
            streams.serve_logs(self, namespace, name, query)
        elif resource == "pods" and subresource == "exec" and method in ("POST", "GET"):
            streams.serve_exec(self, namespace, name, query)
        elif resource == "pods" and (subresource, method) == ("inspect", "GET"):
            registry.get(resource, namespace, name)
            self.send_json(200, self.node_proxy().inspect(namespace, name))
        else:
            raise not_found(self.path)

    def table_requested(self) -> bool:
        return wants_table(self.headers.get("Accept"))

    def table(self, resource: str, objects: list[dict], query: dict, resource_version: str | None) -> dict:
        return printers.table(resource, objects, self.server.api.registry.clock.now(), resource_version,
                              include_object_policy(query))

    def node_proxy(self):
        proxy = self.server.api.node_proxy
        if proxy is None:
            raise errors.ServiceUnavailable("no node agent is connected to serve pod logs, exec or inspect; "
                                            "is the node running? (minikube-py status)")
        return proxy

    def _patch_type(self) -> str:
        content_type = (self.headers.get("Content-Type") or MERGE_PATCH).split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            raise errors.UnsupportedMediaType(f"the body of a PATCH must be one of {', '.join(sorted(PATCH_TYPES))}; "
                                              f"got {content_type}")
        if content_type == "application/apply-patch+yaml":
            raise errors.UnsupportedMediaType("server-side apply is not supported by minikube-py; use client-side apply")
        return content_type

    def _delete(self, resource: str, namespace: str | None, name: str, query: dict, body: Any) -> dict:
        options = body if isinstance(body, dict) else {}
        propagation = text(query, "propagationPolicy") or options.get("propagationPolicy")
        grace = integer(query, "gracePeriodSeconds")
        if grace is None:
            grace = options.get("gracePeriodSeconds")
        if options.get("orphanDependents") is True and propagation is None:
            propagation = "Orphan"
        return self.server.api.registry.delete(resource, namespace, name, propagation, grace,
                                               preconditions=options.get("preconditions"))
