"""The request handler: one HTTP request in, one Registry call, one JSON answer out.

`ApiRequestHandler` reads the body, resolves the path with `routing`, calls the Registry method
of the same meaning and writes the result as JSON, or the error as a Kubernetes `Status` with its
HTTP code; streaming requests (watch, logs, exec) are handed to `streams`. A GET whose Accept
header asks for `application/json;as=Table;v=v1;g=meta.k8s.io` (what `kubectl get` sends) is
answered with a `meta.k8s.io/v1` Table from `api.printers`, which is what lets kubectl print our
columns. Standard library only: `http.server`, one thread per connection, HTTP/1.1 keep-alive.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import ssl
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from minikube_py.api import errors, printers
from minikube_py.api.loader import load_manifests
from minikube_py.apiserver import (
    auth, authorization_review, conversion, dryrun, field_validation, fieldmanager, health, openapi_protobuf, protobuf,
    streams)
from minikube_py.apiserver.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, RequestLabels
from minikube_py.apiserver.patch import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from minikube_py.apiserver.resource_metrics import MetricsRoute
from minikube_py.apiserver.routing import (
    OpenApiV2, Route, include_object_policy, integer, not_found, parse_route, text, wants_protobuf, wants_table)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

PATCH_TYPES = {MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH, APPLY_PATCH}
JSON = "application/json"
# kube-apiserver's limit on a request body (3 MiB), and how deep a JSON document may nest.
MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_JSON_DEPTH = 100
KNOWN_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# The options object of each write verb: where kube-apiserver reads dryRun and fieldManager from.
OPTIONS_KINDS = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions", "DELETE": "DeleteOptions"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_depth_exceeds(document: Any, limit: int) -> bool:
    """Whether `document` nests containers more than `limit` levels deep (without recursing)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class _DeadlineSocketIO(socket.SocketIO):
    """A socket reader with an optional deadline for everything read until it is cleared: a
    client that trickles its request a byte at a time gets no more time than one that sends
    nothing (a per-read timeout alone would let it hold a thread forever)."""

    deadline: float | None = None

    def readinto(self, buffer) -> int | None:  # type: ignore[override]
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request did not arrive in time")
            self._sock.settimeout(remaining)
        return super().readinto(buffer)


class ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "minikube-py"

    def setup(self) -> None:
        # Small JSON writes go straight out; Nagle would delay every response on TCP.
        self.disable_nagle_algorithm = self.request.family != socket.AF_UNIX
        # A silent client (no request, no handshake) is hung up on instead of holding a thread.
        self.timeout = self.server.api.read_timeout
        self._body_pending = False
        self._warnings: list[str] = []
        self._answer_version: tuple | None = None
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()
        self._reader = _DeadlineSocketIO(self.connection, "rb")
        self.rfile = io.BufferedReader(self._reader)
        self.server.api.track(self.connection, True)

    def handle_one_request(self) -> None:
        # The request line, headers and body must all arrive within one read timeout.
        self._reader.deadline = time.monotonic() + self.server.api.read_timeout
        try:
            super().handle_one_request()
        finally:
            self._request_received()

    def _request_received(self) -> None:
        """From here on, reads have the plain per-read timeout again (streams may lift it)."""
        if self._reader.deadline is not None:
            self._reader.deadline = None
            try:
                self.connection.settimeout(self.server.api.read_timeout)
            except OSError:
                pass

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

    def __getattr__(self, name: str) -> Any:
        # http.server looks up `do_<METHOD>`; every method we do not serve (OPTIONS, HEAD,
        # TRACE, anything) gets a JSON Status 405 instead of its HTML 501 page.
        if name.startswith("do_"):
            return lambda: self._handle(name[3:])
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a malformed request line, headers too long) as a Status."""
        error = errors.ApiError(message or self.responses.get(code, ("error",))[0])
        error.code, error.reason = code, self.responses.get(code, ("BadRequest",))[0].replace(" ", "")
        self.close_connection = True
        # http.server has not taken the request's version yet when the request line is bad; answer
        # in ours, with headers (an "HTTP/0.9" answer would be a bare body).
        self.request_version = self.protocol_version
        try:
            self.send_json(code, error.to_status())
            self.wfile.flush()
        except OSError:
            pass
        self._drop_waiting_input()

    def _drop_waiting_input(self) -> None:
        """Read, without waiting, what the client already sent past a request we refused whole, so
        that closing the connection does not reset it before the client reads the Status."""
        try:
            self.connection.setblocking(False)
            for _ in range(16):
                if not self.connection.recv(65536):
                    break
        except OSError:
            pass

    # -- plumbing

    def _body_length(self) -> int:
        if self.headers.get("Transfer-Encoding"):
            raise errors.BadRequest("chunked request bodies are not supported; send the body with a "
                                    "Content-Length header")
        text_length = (self.headers.get("Content-Length") or "0").strip()
        if not (text_length.isascii() and text_length.isdigit()) or len(text_length) > 20:
            raise errors.BadRequest(f"Content-Length {text_length[:24]!r} is not a length in bytes")
        length = int(text_length)
        if length > MAX_BODY_BYTES:
            raise errors.RequestEntityTooLarge(f"Request entity too large: limit is {MAX_BODY_BYTES}")
        return length

    def _read_body(self, method: str) -> Any:
        """The request body as a JSON document (None without one). Only JSON or Kubernetes'
        protobuf, or for PATCH a declared patch type, is accepted: a browser's cross-origin
        text/plain or form POST is 415 before anything is parsed."""
        self._body_pending = True
        length = self._body_length()
        if not length:
            self._body_pending = False
            return None
        content_type = (self.headers.get("Content-Type") or JSON).split(";")[0].strip().lower()
        accepted = PATCH_TYPES if method == "PATCH" else {JSON, protobuf.MEDIA_TYPE}
        if content_type not in accepted:
            raise errors.UnsupportedMediaType(
                f"the body of a {method} must be one of {', '.join(sorted(accepted))}; got {content_type}")
        raw = self.rfile.read(length)
        self._body_pending = False
        if len(raw) < length:
            self.close_connection = True
            raise errors.BadRequest(f"the request body ended after {len(raw)} of {length} bytes")
        if content_type == APPLY_PATCH:
            return _apply_patch_document(raw)
        if content_type == protobuf.MEDIA_TYPE:
            return protobuf.decode(raw)
        try:
            document = json.loads(raw, parse_constant=_reject_constant,
                                  object_pairs_hook=field_validation.object_pairs)
        except RecursionError:
            raise errors.BadRequest(f"the request body nests more than {MAX_JSON_DEPTH} levels deep") from None
        except ValueError as error:
            raise errors.BadRequest(f"the request body is not valid JSON: {error}") from None
        if json_depth_exceeds(document, MAX_JSON_DEPTH):
            raise errors.BadRequest(f"the request body nests more than {MAX_JSON_DEPTH} levels deep")
        return document

    def _discard_body(self) -> bool:
        """Read and drop a request body that an error left unread. Closing a socket with unread
        bytes makes the kernel answer with a reset, and the client may then lose the Status it was
        sent. False when the body cannot be read: no valid length, too large, or cut short."""
        try:
            length = self._body_length()
            dropped = self.rfile.read(length)
        except (errors.ApiError, OSError):
            return False
        self._body_pending = False
        return len(dropped) == length

    def _user(self, parts: list[str]) -> auth.User:
        if not self.server.requires_credentials:
            return auth.LOCAL_ADMIN
        try:
            return auth.authenticate(self.headers.get("Authorization"), self.connection, self.server.tokens)
        except errors.Unauthorized:
            # The health endpoints answer anyone who shows no credential at all (a load
            # balancer's probe); a wrong credential is still 401.
            if health.is_health_path(parts) and not self.headers.get("Authorization"):
                return auth.ANONYMOUS
            raise

    def send_json(self, code: int, document: Any) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_body(code, "application/json", body)

    def send_object(self, code: int, document: Any) -> None:
        """An API object or list, as protobuf when the client prefers it and the kind has a
        message (protobuf.py), else as JSON; in the version the request's URL names."""
        if self._answer_version is not None:
            document = conversion.answer_in(*self._answer_version, document)
        if wants_protobuf(self.headers.get("Accept")) and isinstance(document, dict):
            encoded = protobuf.encode(document)
            if encoded is not None:
                self.send_body(code, protobuf.MEDIA_TYPE, encoded)
                return
        self.send_json(code, document)

    def send_body(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if content_type.startswith("text/"):
            self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(body)))
        for warning in self._warnings:
            # RFC 7234 warn-code 299 ("miscellaneous persistent warning"), as kube-apiserver sends
            # them; JSON string escaping keeps the header ASCII with quotes and backslashes escaped.
            self.send_header("Warning", f"299 - {json.dumps(warning)}")
        self.end_headers()
        self.wfile.write(body)

    def send_response(self, code: int, message: str | None = None) -> None:
        self.response_code = code  # what `/metrics` counts this request as
        super().send_response(code, message)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        self._body_pending = True
        self._warnings = []
        self._answer_version = None
        started = time.monotonic()
        self.response_code = 0
        self.request_labels = RequestLabels.of_path(method, url.path)
        try:
            self._handle_request(method, url, query)
        finally:
            self.server.api.metrics.observe(self.request_labels, self.response_code, time.monotonic() - started)

    def _handle_request(self, method: str, url, query: dict) -> None:
        try:
            parts = [part for part in url.path.split("/") if part]
            user = self._user(parts)
            if method not in KNOWN_METHODS:
                raise errors.MethodNotAllowed(f"{method} is not supported; use GET, POST, PUT, PATCH or DELETE")
            if self._serve_path(method, url.path, parts, query, user):
                return
            route = parse_route(url.path)
            if isinstance(route, OpenApiV2):
                if method != "GET":
                    raise errors.MethodNotAllowed(f"{method} is not supported on {url.path}")
                self._read_body(method)
                self._request_received()
                self.send_body(200, *openapi_protobuf.negotiate_v2(self.headers.get("Accept")))
                return
            if isinstance(route, dict):
                if method != "GET":
                    raise errors.MethodNotAllowed(f"{method} is not supported on {url.path}")
                self._read_body(method)
                self._request_received()
                self.send_json(200, route)
                return
            if isinstance(route, MetricsRoute):
                self._serve_metrics(user, method, route, query)
                return
            self.request_labels = _resource_labels(method, route, query, self.headers.get("Content-Type"))
            auth.authorize(user, method, route, query, self.server.api.registry)
            body = self._read_body(method)
            auth.check_node_object(user, method, route, body)
            self._request_received()
            registry = self.server.api.registry
            if method in OPTIONS_KINDS:
                registry = self._registry_for_write(registry, method, query, body, route.served.api_version)
            body = self._validate_fields(method, route, query, body)
            self._serve(method, route, query, body, registry)
        except errors.ApiError as error:
            self._send_error(error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except TimeoutError:
            self.close_connection = True
        except Exception:  # a bug must answer a Status, not kill the connection or show Python
            log.exception("%s %s failed", method, self.path)
            self._send_error(errors.ApiError(f"internal error while serving {method} {url.path}; "
                                             "the daemon log has the details"))

    def _serve_path(self, method: str, path: str, parts: list[str], query: dict, user: auth.User) -> bool:
        """The non-resource paths besides discovery: the health endpoints, `/metrics` and the
        self-reviews. False for any other path."""
        if health.is_health_path(parts) or parts == ["metrics"]:
            if method != "GET":
                raise errors.MethodNotAllowed(f"{method} is not supported on {path}; use GET")
            auth.authorize_path(user, path)
            self._read_body(method)
            self._request_received()
            if parts == ["metrics"]:
                self.send_body(200, METRICS_CONTENT_TYPE, self.server.api.metrics.exposition())
            else:
                answer = self.server.api.health.answer(parts, query)
                self.send_body(answer.code, "text/plain; charset=utf-8", answer.text.encode())
            return True
        if "/" + "/".join(parts) in authorization_review.REVIEW_PATHS:
            group, version, resource = parts[1], parts[2], parts[3]
            self.request_labels = RequestLabels(method, group, version, resource, scope="cluster")
            if method != "POST":
                raise errors.MethodNotAllowed(f"{method} is not supported on {path}; {resource} can only be created")
            body = self._read_body(method)
            self._request_received()
            self.send_json(201, authorization_review.review("/" + "/".join(parts), user, body,
                                                            self.server.api.registry))
            return True
        return False

    def _validate_fields(self, method: str, route: Route, query: dict, body: Any) -> Any:
        """The body with `fieldValidation` applied (field_validation.py), for writes of objects
        and their status."""
        if method not in ("POST", "PUT", "PATCH") or route.subresource not in (None, "status"):
            return body
        if method == "PATCH" and self._patch_type(apply_allowed=True) == JSON_PATCH:
            return body
        directive = field_validation.directive(query.get("fieldValidation"))
        return field_validation.check(route.info, body, directive, self._warnings, route.served)

    def _result_check(self, route: Route, query: dict, patch_type: str):
        """For a JSON patch, whose body names no fields: `fieldValidation` applied to the patched
        object instead, as kube-apiserver decodes the patch's result (Strict refuses the unknown
        fields the patch added, Warn drops them with a warning, Ignore drops them)."""
        if patch_type != JSON_PATCH:
            return None
        field_validation_directive = field_validation.directive(query.get("fieldValidation"))
        return lambda patched: field_validation.check(route.info, patched, field_validation_directive,
                                                      self._warnings, route.served)

    def _send_error(self, error: errors.ApiError) -> None:
        if self._body_pending and not self._discard_body():
            # The body could not be read: the rest of this connection is not a request boundary.
            self.close_connection = True
        try:
            self.send_json(error.code, error.to_status())
        except OSError:
            self.close_connection = True

    def _serve(self, method: str, route: Route, query: dict, body: Any, registry) -> None:
        info, namespace, name, subresource = route.info, route.namespace, route.name, route.subresource
        resource = info.plural
        # The Registry speaks the storage version: bodies in, answers out are converted here, and
        # patches are applied to the object as this version shows it (apiserver/conversion.py).
        served = route.served
        self._answer_version = (info, served)
        version = served.api_version
        if method in ("POST", "PUT") and subresource in (None, "status"):
            body = conversion.body_to_storage(info, served, body)
        if name is None:
            label_selector, field_selector = text(query, "labelSelector"), text(query, "fieldSelector")
            if method == "GET":
                if query.get("watch", [""])[-1].lower() in ("true", "1"):
                    with self.server.api.metrics.longrunning(self.request_labels):
                        streams.serve_watch(self, route, query)
                else:
                    self.send_object(200, self._list(registry, route, query, label_selector, field_selector))
            elif method == "POST":
                self.send_object(201, registry.create(resource, namespace, body))
            elif method == "DELETE":
                propagation, grace, preconditions = _delete_options(query, body)
                self.send_object(200, registry.delete_collection(resource, namespace, label_selector, field_selector,
                                                                 propagation, grace, preconditions))
            else:
                raise errors.MethodNotAllowed(f"{method} is not supported on a collection of {resource}")
            return
        if subresource is None:
            if method == "GET":
                obj = registry.get(resource, namespace, name)
                if self.table_requested():
                    obj = self.table(resource, [obj], query, obj["metadata"].get("resourceVersion"))
                self.send_object(200, obj)
            elif method == "PUT":
                self.send_object(200, registry.replace(resource, namespace, name, body))
            elif method == "PATCH":
                patch_type = self._patch_type(apply_allowed=True)
                if patch_type == APPLY_PATCH:
                    applied, created = registry.apply(resource, namespace, name, body,
                                                      force=_flag(query, "force"), version=version)
                    self.send_object(201 if created else 200, applied)
                else:
                    self.send_object(200, registry.patch(resource, namespace, name, body, patch_type, version=version,
                                                         check_fields=self._result_check(route, query, patch_type)))
            elif method == "DELETE":
                self.send_object(200, self._delete(registry, resource, namespace, name, query, body))
            else:
                raise errors.MethodNotAllowed(f"{method} is not supported on {resource}/{name}")
            return
        handler = {
            ("status", "GET"): lambda: registry.get(resource, namespace, name),
            ("status", "PUT"): lambda: registry.replace_status(resource, namespace, name, body),
            ("status", "PATCH"): lambda: registry.apply_status(
                resource, namespace, name, body, force=_flag(query, "force"), version=version)
            if self._patch_type(apply_allowed=True) == APPLY_PATCH else registry.patch_status(
                resource, namespace, name, body, self._patch_type(), version=version,
                check_fields=self._result_check(route, query, self._patch_type())),
            ("scale", "GET"): lambda: registry.get_scale(resource, namespace, name),
            ("scale", "PUT"): lambda: registry.replace_scale(resource, namespace, name, body),
            ("scale", "PATCH"): lambda: registry.apply_scale(resource, namespace, name, body, force=_flag(query, "force"))
            if self._patch_type(apply_allowed=True) == APPLY_PATCH else
            registry.patch_scale(resource, namespace, name, body, self._patch_type()),
        }.get((subresource, method))
        if handler is not None:
            self.send_object(200, handler())
        elif resource == "pods" and (subresource, method) == ("binding", "POST"):
            target = body.get("target") if isinstance(body, dict) else None
            node = target.get("name") if isinstance(target, dict) else None
            if not isinstance(node, str) or not node:
                raise errors.BadRequest("binding: target.name (the node's name) is required: send a v1 Binding "
                                        "with target {kind: Node, name: NODE}")
            self.send_object(201, registry.bind(namespace, name, node))
        elif resource == "pods" and (subresource, method) == ("eviction", "POST"):
            self.send_object(201, registry.evict(namespace, name, body))
        elif resource == "serviceaccounts" and (subresource, method) == ("token", "POST"):
            self.send_object(201, registry.create_token(namespace, name, body))
        elif resource == "pods" and subresource == "ephemeralcontainers" and method in ("GET", "PUT", "PATCH"):
            self.send_object(200, registry.get("pods", namespace, name) if method == "GET" else
                           registry.update_ephemeral_containers(namespace, name, body,
                                                                self._patch_type() if method == "PATCH" else None))
        elif resource == "pods" and (subresource, method) == ("log", "GET"):
            streams.serve_logs(self, namespace, name, query)
        elif resource == "pods" and subresource in STREAMS and method in ("POST", "GET"):
            with self.server.api.metrics.longrunning(self.request_labels):
                STREAMS[subresource](self, namespace, name, query)
        elif resource == "pods" and (subresource, method) == ("inspect", "GET"):
            registry.get(resource, namespace, name)
            self.send_object(200, self.node_proxy().inspect(namespace, name))
        else:
            raise not_found(self.path)

    def _serve_metrics(self, user: auth.User, method: str, route: MetricsRoute, query: dict) -> None:
        """metrics.k8s.io: read-only, for the admin (metrics-server's RBAC gives it to no one else by default)."""
        if method != "GET":
            raise errors.MethodNotAllowed(f"{method} is not supported on {route.resource}.metrics.k8s.io; "
                                          "the Metrics API is read-only")
        if not user.is_admin:
            raise errors.Forbidden(f'{route.resource}.metrics.k8s.io is forbidden: User "{user.name}" cannot '
                                   f'{"get" if route.name else "list"} resource "{route.resource}" in API group '
                                   '"metrics.k8s.io"')
        self._read_body(method)
        self._request_received()
        registry = self.server.api.registry
        if route.name is not None:
            self.send_json(200, registry.get_metrics(route.resource, route.namespace, route.name))
        else:
            self.send_json(200, registry.list_metrics(route.resource, route.namespace, text(query, "labelSelector"),
                                                      text(query, "fieldSelector")))

    def _list(self, registry, route: Route, query: dict, label_selector: str | None,
              field_selector: str | None) -> dict:
        """A List, or a page of it (`limit`, `continue`), as JSON or as a Table."""
        continue_token = text(query, "continue")
        if continue_token and text(query, "resourceVersion"):
            raise errors.BadRequest("specifying resource version is not allowed when using continue")
        listing = registry.list(route.info.plural, route.namespace, label_selector, field_selector,
                                limit=integer(query, "limit", minimum=0), continue_token=continue_token)
        if not self.table_requested():
            return listing
        table = self.table(route.info.plural, listing["items"], query, listing["metadata"].get("resourceVersion"))
        for key in ("continue", "remainingItemCount"):
            if key in listing["metadata"]:
                table["metadata"][key] = listing["metadata"][key]
        return table

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

    def _patch_type(self, apply_allowed: bool = False) -> str:
        content_type = (self.headers.get("Content-Type") or MERGE_PATCH).split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            raise errors.UnsupportedMediaType(f"the body of a PATCH must be one of {', '.join(sorted(PATCH_TYPES))}; "
                                              f"got {content_type}")
        if content_type == APPLY_PATCH and not apply_allowed:
            raise errors.UnsupportedMediaType("server-side apply works on an object itself, not on its subresources; "
                                              "apply the object, or send a merge patch to the subresource")
        return content_type

    def _registry_for_write(self, registry, method: str, query: dict, body: Any, api_version: str):
        """The Registry a write is made through: recorded in managedFields as the request's field
        manager (`fieldManager`, else the User-Agent's first word) at the request's `api_version`,
        and storing nothing on a dry run. Bad options are kube-apiserver's 422 for the verb's
        options kind."""
        options_kind = OPTIONS_KINDS[method]
        dry_run = dryrun.dry_run_values(query, body, options_kind)
        field_manager = text(query, "fieldManager") or ""
        problems = fieldmanager.field_manager_problems(field_manager)
        applying = method == "PATCH" and \
            (self.headers.get("Content-Type") or "").split(";")[0].strip() == APPLY_PATCH
        if applying and not field_manager:
            problems.insert(0, ("fieldManager", "Required value: is required for apply patch"))
        if not applying and "force" in query:
            problems.append(("force", "Forbidden: may not be specified for non-apply patch"))
        if problems:
            raise _options_invalid(options_kind, problems)
        registry = registry.acting_as(fieldmanager.manager_from_request(field_manager, self.headers.get("User-Agent")),
                                      api_version)
        return registry.dry_run() if dry_run else registry

    def _delete(self, registry, resource: str, namespace: str | None, name: str, query: dict, body: Any) -> dict:
        propagation, grace, preconditions = _delete_options(query, body)
        deleted = registry.delete(resource, namespace, name, propagation, grace, preconditions=preconditions)
        return registry.deletion_answer(resource, deleted)


def _flag(query: dict, name: str) -> bool:
    value = text(query, name)
    if value in (None, "", "false", "0", "False"):
        return False
    if value in ("true", "1", "True"):
        return True
    raise errors.BadRequest(f"{name}={value[:32]!r}: must be true or false")


def _options_invalid(options_kind: str, problems: list[tuple[str, str]]) -> errors.Invalid:
    """kube-apiserver's 422 for bad request options (`PatchOptions.meta.k8s.io "" is invalid: ...`)."""
    rendered = [f"{field}: {message}" for field, message in problems]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    reasons = {"Required value": "FieldValueRequired", "Forbidden": "FieldValueForbidden",
               "Too long": "FieldValueTooLong"}
    causes = [{"reason": next((reason for prefix, reason in reasons.items() if message.startswith(prefix)),
                              "FieldValueInvalid"), "message": message, "field": field}
              for field, message in problems]
    return errors.Invalid(f'{options_kind}.meta.k8s.io "" is invalid: {summary}', problems,
                          {"group": "meta.k8s.io", "kind": options_kind, "causes": causes})


def _apply_patch_document(raw: bytes) -> Any:
    """An apply patch body: one object, JSON (what kubectl sends) or YAML."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        pass
    documents = load_manifests(raw, "apply patch")
    if len(documents) != 1:
        raise errors.BadRequest(f"error decoding YAML: an apply patch must be one object, found {len(documents)}")
    if documents[0].error:
        raise errors.BadRequest(f"error decoding YAML: {documents[0].error}")
    return documents[0].data


STREAMS = {"exec": streams.serve_exec, "attach": streams.serve_attach, "portforward": streams.serve_portforward}


def _delete_options(query: dict, body: Any) -> tuple[str | None, int | None, dict | None]:
    """(propagationPolicy, gracePeriodSeconds, preconditions) from the query and a DeleteOptions body."""
    if body is not None and not isinstance(body, dict):
        raise errors.BadRequest("the body of a DELETE must be a v1 DeleteOptions object")
    options = body or {}
    propagation = text(query, "propagationPolicy") or options.get("propagationPolicy")
    grace = integer(query, "gracePeriodSeconds")
    if grace is None:
        grace = options.get("gracePeriodSeconds")
        if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)
                                  or not -2**63 <= grace < 2**63):
            raise errors.BadRequest(f"DeleteOptions gracePeriodSeconds: {grace!r} must be an integer")
    if propagation is not None and not isinstance(propagation, str):
        raise errors.BadRequest(f"DeleteOptions propagationPolicy: {propagation!r} must be Orphan, "
                                "Background or Foreground")
    if options.get("preconditions") is not None and not isinstance(options["preconditions"], dict):
        raise errors.BadRequest("DeleteOptions preconditions: must be an object with uid and resourceVersion")
    if options.get("orphanDependents") is True and propagation is None:
        propagation = "Orphan"
    return propagation, grace, options.get("preconditions")


def _resource_labels(method: str, route: Route, query: dict, content_type: str | None) -> RequestLabels:
    """A resource request in kube-apiserver's metric labels."""
    verb = method
    if route.subresource in STREAMS:
        verb = "CONNECT"
    elif route.name is None and method == "GET":
        verb = "WATCH" if query.get("watch", [""])[-1].lower() in ("true", "1") else "LIST"
    elif route.name is None and method == "DELETE":
        verb = "DELETECOLLECTION"
    elif method == "PATCH" and (content_type or "").startswith("application/apply-patch"):
        verb = "APPLY"
    group, _, version = route.served.api_version.rpartition("/")
    scope = "resource" if route.name else "namespace" if route.namespace else "cluster"
    dry_run = "All" if any(query.get("dryRun", [])) else ""
    return RequestLabels(verb, group, version, route.info.plural, route.subresource or "", scope, dry_run)
