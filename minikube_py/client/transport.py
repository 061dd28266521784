"""The API over HTTP: the Registry's methods, spoken to a minikube-py API server.

`HttpTransport` has the same method names and arguments as `Registry` and returns the same wire
dicts, so everything written against one works against the other (the CLI and remote agents use
this one; the daemon's own controllers call the Registry directly). It talks HTTP/1.1 with
`http.client` over the daemon's unix socket (root's door, no credential) or over TLS to the TCP
listener with a bearer token (see `client.kubeconfig`), keeps one keep-alive connection per thread,
and turns every error `Status` back into the matching `ApiError`. Watches and log streams take
their own connection; exec and attach upgrade one to a WebSocket with Kubernetes' channel protocol.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import ssl
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import quote, urlencode, urlsplit

from minikube_py import __version__, api
from minikube_py.api import errors
from minikube_py.api.watch import EventStream

if TYPE_CHECKING:
    # Streams need wsproto, which costs a CLI command that opens none 40 ms to import: the
    # stream methods import these when called.
    from minikube_py.api import exec_stream
    from minikube_py.client.remote_command import ExecStream

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
USER_AGENT = f"minikube-py/{__version__}"
# As kubectl: a manifest field the server does not know is an error, not silently dropped.
STRICT_FIELDS = {"fieldValidation": "Strict"}
# Errors of a kept-alive connection the server has meanwhile closed: safe to send again once.
STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                           ConnectionAbortedError)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTPConnection to a unix socket path instead of host:port."""

    def __init__(self, socket_path: str, timeout: float | None = None):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if self.timeout is not None:
                sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _error_from_response(status: int, body: bytes) -> errors.ApiError:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("kind") == "Status":
        return errors.ApiError.from_status(document)
    error = errors.ApiError(f"the server answered {status}: {body[:200].decode(errors='replace')}")
    error.code = status
    return error


class TransportWatch(EventStream):
    """A watch over HTTP: `{"type", "object"}` dicts as the server streams them. A reader thread
    feeds a queue so `next(timeout)` can wait with a timeout; `close()` hangs up."""

    _END = object()

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._connection = connection
        self._response = response
        self._events: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="watch-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                line = self._response.readline()
                if not line:
                    break
                if line.strip():
                    self._events.put(json.loads(line))
        except Exception:  # a closed or broken stream: either way the watch is over
            pass
        finally:
            self._events.put(self._END)

    @property
    def closed(self) -> bool:
        return self._closed

    def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event; None on timeout or once the stream has ended."""
        if self._closed:
            return None
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if event is self._END:
            self._closed = True
            self._events.put(self._END)
            return None
        return event

    def close(self) -> None:
        self._closed = True
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._connection.close()


class HttpTransport:
    """The Registry's methods over HTTP. Give `socket_path` (the daemon's api.sock) or `url`
    (`https://127.0.0.1:PORT`, with `tls` trusting the cluster CA and a bearer `token`). Safe to
    share between threads."""

    def __init__(self, socket_path: str | None = None, url: str | None = None, timeout: float | None = 60.0,
                 token: str | None = None, tls: ssl.SSLContext | None = None):
        if (socket_path is None) == (url is None):
            raise ValueError("HttpTransport needs exactly one of socket_path or url")
        self.socket_path = socket_path
        self.url = url
        self.timeout = timeout
        self.token = token
        self.tls = tls
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"HttpTransport({self.socket_path or self.url!r})"

    # -- connections

    def _new_connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return UnixHTTPConnection(self.socket_path, timeout=timeout)
        parts = urlsplit(self.url or "")
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname or "localhost", parts.port or 443, timeout=timeout,
                                               context=self.tls or ssl.create_default_context())
        return http.client.HTTPConnection(parts.hostname or "localhost", parts.port or 80, timeout=timeout)

    def _headers(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        # The User-Agent's first word is the field manager the server records for our writes.
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(extra or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _request(self, method: str, path: str, body: Any = None,
                 content_type: str = "application/json") -> Any:
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = self._headers()
        if payload is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
            reused = connection is not None
            if connection is None:
                connection = self._local.connection = self._new_connection(self.timeout)
            try:
                connection.request(method, path, payload, headers)
                response = connection.getresponse()
                data = response.read()
                break
            except STALE_CONNECTION_ERRORS:
                connection.close()
                self._local.connection = None
                if not reused or attempt == 2:
                    raise
            except BaseException:
                connection.close()
                self._local.connection = None
                raise
        assert connection is not None  # the loop either broke out with one or raised
        if response.will_close:
            connection.close()
            self._local.connection = None
        if response.status >= 400:
            raise _error_from_response(response.status, data)
        return json.loads(data) if data else None

    def _open_stream(self, method: str, path: str, extra_headers: dict[str, Any] | None = None
                     ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """A dedicated connection for a long response (watch, logs); raises on an error status."""
        connection = self._new_connection(None)
        try:
            connection.request(method, path, headers=self._headers(extra_headers))
            response = connection.getresponse()
            if response.status >= 400:
                raise _error_from_response(response.status, response.read())
        except BaseException:
            connection.close()
            raise
        return connection, response

    # -- paths

    @staticmethod
    def _info(resource: str) -> api.ResourceInfo:
        info = api.RESOURCES.get(resource)
        return info if info is not None else api.resource_for(resource)

    def _path(self, resource: str, namespace: str | None, name: str | None = None,
              subresource: str | None = None, query: dict[str, Any] | None = None) -> str:
        info = self._info(resource)
        # `horizontalpodautoscalers.v1.autoscaling` names a version other than the storage one.
        api_version = info.api_version if resource in api.RESOURCES else api.resource_and_version_for(resource)[1]
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if info.namespaced and (namespace or name is not None):
            path += f"/namespaces/{quote(namespace or 'default', safe='')}"
        path += f"/{info.plural}"
        if name is not None:
            path += f"/{quote(name, safe='')}"
        if subresource is not None:
            path += f"/{subresource}"
        query = {key: value for key, value in (query or {}).items() if value is not None}
        return f"{path}?{urlencode(query, doseq=True)}" if query else path

    @staticmethod
    def _metrics_path(resource: str, namespace: str | None, name: str | None = None,
                      query: dict[str, Any] | None = None) -> str:
        path = "/apis/metrics.k8s.io/v1beta1"
        if resource == "pods" and namespace:
            path += f"/namespaces/{quote(namespace, safe='')}"
        path += f"/{resource}" + (f"/{quote(name, safe='')}" if name is not None else "")
        query = {key: value for key, value in (query or {}).items() if value is not None}
        return f"{path}?{urlencode(query)}" if query else path

    # -- the Registry's methods

    def version(self) -> dict[str, Any]:
        return self._request("GET", "/version")

    def create(self, resource: str, namespace: str | None, body: dict[str, Any], dry_run: bool = False,
               field_manager: str | None = None) -> dict[str, Any]:
        """POST; `dry_run`: the server answers what it would store and stores nothing."""
        if self._info(resource).namespaced:
            namespace = namespace or (body.get("metadata") or {}).get("namespace") or "default"
        return self._request("POST", self._path(resource, namespace, query=_write_options(dry_run, field_manager)),
                             body)

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        return self._request("GET", self._path(resource, namespace, name))

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> dict[str, Any]:
        return self._request("GET", self._path(resource, namespace, query={
            "labelSelector": label_selector, "fieldSelector": field_selector}))

    def replace(self, resource: str, namespace: str | None, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", self._path(resource, namespace, name, query=STRICT_FIELDS), body)

    def patch(self, resource: str, namespace: str | None, name: str, patch: Any,
              patch_type: str = MERGE_PATCH, dry_run: bool = False, field_manager: str | None = None) -> dict[str, Any]:
        return self._request("PATCH", self._path(resource, namespace, name,
                                                 query=_write_options(dry_run, field_manager)), patch, patch_type)

    def apply(self, resource: str, namespace: str | None, name: str, body: dict[str, Any], field_manager: str,
              force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply of `body` (a partial object) as `field_manager`; `force` takes the
        fields other managers own instead of failing with a conflict."""
        query = {**_write_options(dry_run, field_manager), "force": "true" if force else None}
        return self._request("PATCH", self._path(resource, namespace, name, query=query), body, APPLY_PATCH)

    def replace_status(self, resource: str, namespace: str | None, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", self._path(resource, namespace, name, "status"), body)

    def patch_status(self, resource: str, namespace: str | None, name: str, patch: Any,
                     patch_type: str = MERGE_PATCH) -> dict[str, Any]:
        return self._request("PATCH", self._path(resource, namespace, name, "status"), patch, patch_type)

    def list_metrics(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
                     field_selector: str | None = None) -> dict[str, Any]:
        """PodMetricsList ("pods") or NodeMetricsList ("nodes") from metrics.k8s.io."""
        return self._request("GET", self._metrics_path(resource, namespace, query={
            "labelSelector": label_selector, "fieldSelector": field_selector}))

    def get_metrics(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        return self._request("GET", self._metrics_path(resource, namespace, name))

    def get_scale(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        return self._request("GET", self._path(resource, namespace, name, "scale"))

    def replace_scale(self, resource: str, namespace: str | None, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", self._path(resource, namespace, name, "scale"), body)

    def patch_scale(self, resource: str, namespace: str | None, name: str, patch: Any,
                    patch_type: str = MERGE_PATCH) -> dict[str, Any]:
        return self._request("PATCH", self._path(resource, namespace, name, "scale"), patch, patch_type)

    def create_token(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """A TokenRequest for the ServiceAccount `name` (what kubelet asks for projected tokens)."""
        return self._request("POST", self._path("serviceaccounts", namespace, name, "token"), body)

    def evict(self, namespace: str | None, name: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """POST a policy/v1 Eviction to the pod's eviction subresource."""
        return self._request("POST", self._path("pods", namespace, name, "eviction"), body or {})

    def bind(self, namespace: str | None, name: str, node_name: str) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        return self._request("POST", self._path("pods", namespace, name, "binding"), body)

    def delete(self, resource: str, namespace: str | None, name: str, propagation_policy: str | None = None,
               grace_period_seconds: int | None = None, preconditions: dict[str, Any] | None = None,
               dry_run: bool = False) -> dict[str, Any]:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if dry_run:
            options["dryRun"] = ["All"]
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = preconditions
        return self._request("DELETE", self._path(resource, namespace, name), options)

    def watch(self, resource: str, namespace: str | None = None, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None,
              timeout_seconds: int | None = None) -> TransportWatch:
        path = self._path(resource, namespace, query={
            "watch": "1", "resourceVersion": resource_version, "labelSelector": label_selector,
            "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds})
        return TransportWatch(*self._open_stream("GET", path))

    # -- pod subresources served by the node agent

    def logs(self, namespace: str | None, name: str, container: str | None = None, follow: bool = False,
             tail_lines: int | None = None, timestamps: bool = False, previous: bool = False) -> Iterator[bytes]:
        path = self._path("pods", namespace, name, "log", query={
            "container": container, "follow": "true" if follow else None, "tailLines": tail_lines,
            "timestamps": "true" if timestamps else None, "previous": "true" if previous else None})
        connection, response = self._open_stream("GET", path)

        def chunks() -> Iterator[bytes]:
            try:
                while chunk := response.read1(65536):
                    yield chunk
            finally:
                connection.close()

        return chunks()

    def inspect(self, namespace: str | None, name: str) -> dict[str, Any]:
        return self._request("GET", self._path("pods", namespace, name, "inspect"))

    def exec(self, namespace: str | None, name: str, container: str | None, command: Sequence[str],
             tty: bool = False, stdin: bool = True) -> ExecStream:
        return self._remote_command("exec", namespace, name, {
            "command": list(command), "container": container, "stdin": stdin, "tty": tty})

    def attach(self, namespace: str | None, name: str, container: str | None, tty: bool = False,
               stdin: bool = True) -> ExecStream:
        return self._remote_command("attach", namespace, name, {"container": container, "stdin": stdin, "tty": tty})

    def _remote_command(self, subresource: str, namespace: str | None, name: str, options: dict[str, Any]
                        ) -> ExecStream:
        from minikube_py.api import exec_stream
        from minikube_py.client.remote_command import ExecStream

        query = {key: value for key, value in options.items() if not isinstance(value, bool)}
        query.update({key: "true" for key in ("stdin", "tty") if options.get(key)})
        query["stdout"] = "true"
        if not options.get("tty"):
            query["stderr"] = "true"
        return ExecStream(self.open_channels(self._path("pods", namespace, name, subresource, query=query),
                                             exec_stream.REMOTE_COMMAND_PROTOCOLS))

    def port_forward(self, namespace: str | None, name: str, port: int) -> exec_stream.ChannelSocket:
        """One connection to the pod's `port` (localhost in its network namespace) as a WebSocket
        of the channel protocol: data on channel 0, an error's text on channel 1; each channel's
        first message is the port (two little-endian bytes)."""
        from minikube_py.api import exec_stream

        return self.open_channels(self._path("pods", namespace, name, "portforward", query={"ports": str(port)}),
                                  exec_stream.PORT_FORWARD_PROTOCOLS)

    def open_channels(self, path: str, protocols: dict[str, exec_stream.ChannelProtocol]
                      ) -> exec_stream.ChannelSocket:
        """A WebSocket to `path` speaking the first of `protocols` the server accepts; an HTTP
        error answer raises the matching ApiError."""
        from minikube_py.api import exec_stream

        connection = self._new_connection(None)
        connection.connect()
        sock = connection.sock
        headers = [("Authorization", f"Bearer {self.token}")] if self.token else []
        try:
            return exec_stream.connect(sock, "localhost", path, protocols, headers)
        except exec_stream.HandshakeRejected as rejected:
            sock.close()
            raise _error_from_response(rejected.status, rejected.body) from None
        except BaseException:
            sock.close()
            raise


def _write_options(dry_run: bool, field_manager: str | None) -> dict[str, Any]:
    """The query of a write: kubectl's strict field validation, dry run and the field manager."""
    return {**STRICT_FIELDS, "dryRun": "All" if dry_run else None, "fieldManager": field_manager}
