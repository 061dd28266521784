"""The API server's two doors: the unix socket (root only) and, with a port, a TLS listener.

The unix socket is mode 0600: only root reaches it, and it needs no credential. The TCP listener
(127.0.0.1, and the cluster bridge's address for pods, which the service proxy's table closes to
packets from anywhere but the bridge and the host itself) speaks TLS and nothing else, with the serving certificate `start` made, and asks
every request for a credential (`auth`). The TLS handshake runs in the connection's own thread,
under its read timeout, so a client that connects and says nothing holds no one else up.
`ApiHttpServer` owns the listening sockets, one accept thread per listener, the set of open
connections and watches (so `stop()` can end them at once) and the `HangUpDetector` shared by all
watches. Each connection is served by `handler.ApiRequestHandler` in its own thread.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

from minikube_py.apiserver import certificates
from minikube_py.apiserver.auth import TokenAuthenticator
from minikube_py.apiserver.handler import ApiRequestHandler
from minikube_py.apiserver.hangups import HangUpDetector
from minikube_py.apiserver.health import HealthChecks
from minikube_py.apiserver.metrics import ApiMetrics
from minikube_py.apiserver.serviceaccount_tokens import ServiceAccountUser, service_account_user

log = logging.getLogger(__name__)

# The accept loop wakes this often when idle; `stop()` does not wait for it (see _shut_down_now).
SERVE_POLL_SECONDS = 5.0
# `stop()` waits at most this long for an accept loop to end (a few poll periods), and a poke that
# wakes it may take this long to connect.
STOP_WAIT_SECONDS = 30.0
POKE_TIMEOUT_SECONDS = 0.5
# How long a connection may stay silent while a request is due (also bounds the TLS handshake
# and an idle keep-alive connection); streams that legitimately sit idle lift it (exec).
READ_TIMEOUT_SECONDS = 60.0
MAX_TCP_CONNECTIONS = 256
# How long a stream (exec, attach, port-forward) may wait for a client that stopped reading.
STREAM_WRITE_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class TlsConfig:
    """The TCP listener's identity and whom it trusts: its certificate and key, the CA whose
    client certificates it accepts, and the static token file."""

    certificate: str
    key: str
    client_ca: str
    tokens: str

    @classmethod
    def of(cls, paths: certificates.Paths) -> "TlsConfig":
        return cls(paths.serving_certificate, paths.serving_key, paths.ca_certificate, paths.tokens)

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certificate, self.key)
        context.load_verify_locations(self.client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL  # a certificate is one credential; a token the other
        return context


class _Serving(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 refuses clients connecting at once (a unix socket
    # connect with a timeout fails with EAGAIN): take as many as the kernel allows, as Go's
    # listeners (kube-apiserver's) do.
    request_queue_size = socket.SOMAXCONN
    api: "ApiHttpServer"
    # Whether requests must show a credential (the TCP door); on the unix socket the user is root.
    requires_credentials = False
    tokens: TokenAuthenticator | None = None

    def handle_error(self, request, client_address) -> None:
        # A failed TLS handshake, a client gone mid-request: that connection's business alone.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _TlsServing(_Serving):
    """The TCP door: TLS, credentials, and at most `max_connections` connections at once, so
    local users who open sockets by the thousand cannot exhaust the daemon's threads (the unix
    socket, root's alone, has no such cap)."""

    requires_credentials = True

    def __init__(self, *args, max_connections: int = 256, **kwargs):
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("refused a TCP connection from %s: %s", client_address, "too many open connections")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _UnixServing(_Serving):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0


class ApiHttpServer:
    """The API on `socket_path` (mode 0600), with `port` on 127.0.0.1:port, and with `pod_listener`
    on that (address, port): the cluster bridge's address, where the `kubernetes` Service sends
    pods. `node_proxy` (the node agent) serves pod logs, exec and inspect; it may be set later."""

    def __init__(self, registry, socket_path: str, port: int | None = None, node_proxy=None,
                 tls: TlsConfig | None = None, read_timeout: float = READ_TIMEOUT_SECONDS,
                 max_tcp_connections: int = MAX_TCP_CONNECTIONS,
                 stream_write_timeout: float = STREAM_WRITE_TIMEOUT_SECONDS,
                 pod_listener: tuple[str, int] | None = None):
        if (port is not None or pod_listener is not None) and tls is None:
            raise ValueError("the TCP listeners serve TLS only: give `tls` with `port` or `pod_listener`")
        self.pod_listener = pod_listener
        self.registry = registry
        self.socket_path = socket_path
        self.port = port
        self.node_proxy = node_proxy
        self.tls = tls
        self.read_timeout = read_timeout
        self.max_tcp_connections = max_tcp_connections
        self.stream_write_timeout = stream_write_timeout
        self._servers: list[_Serving] = []
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._watches: set = set()
        self._lock = threading.Lock()
        self.hang_ups: HangUpDetector | None = None
        store = getattr(registry, "store", None)  # a node's kubelet server serves pods, not a store
        self.metrics = ApiMetrics(store)
        self._stopping = False
        self.health = HealthChecks(store, lambda: self._stopping)

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
            self.port = self._serve_tls(("127.0.0.1", self.port), "tcp")
        if self.pod_listener is not None:
            self.pod_listener = (self.pod_listener[0], self._serve_tls(self.pod_listener, "pods"))

    def _serve_tls(self, address: tuple[str, int], label: str) -> int:
        """A TLS listener on `address` asking every request for a credential; returns its port."""
        assert self.tls is not None
        tcp_server = _TlsServing(address, ApiRequestHandler, bind_and_activate=False,
                                 max_connections=self.max_tcp_connections)
        try:
            tcp_server.server_bind()
            tcp_server.server_activate()
            tcp_server.tokens = TokenAuthenticator.from_file(self.tls.tokens, self._service_account_user)
            tcp_server.socket = self.tls.context().wrap_socket(
                tcp_server.socket, server_side=True, do_handshake_on_connect=False)
        except (OSError, ssl.SSLError):
            tcp_server.server_close()
            self.stop()
            raise
        self._serve(tcp_server, label)
        return tcp_server.server_address[1]

    def _service_account_user(self, token: str) -> ServiceAccountUser | None:
        issuer = self.registry.token_issuer
        return None if issuer is None else service_account_user(self.registry, issuer, token)

    def stop(self) -> None:
        self._stopping = True
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
            thread.join(STOP_WAIT_SECONDS)
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
    """`shutdown()` waits for the accept loop's next wake-up; a connection wakes it at once. A
    loop that has not stopped after STOP_WAIT_SECONDS is left behind (its thread is a daemon and
    its socket is closed next), so `stop()` never hangs on it."""
    stopper = threading.Thread(target=server.shutdown, name="api-shutdown", daemon=True)
    stopper.start()
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while stopper.is_alive() and time.monotonic() < deadline:
        poke = socket.socket(server.address_family, socket.SOCK_STREAM)
        poke.settimeout(POKE_TIMEOUT_SECONDS)  # a full backlog must not block the poke itself
        try:
            poke.connect(server.server_address)
        except OSError:
            pass
        finally:
            poke.close()
        stopper.join(0.05)
    if stopper.is_alive():
        log.warning("the API listener on %s did not stop its accept loop within %.0fs; closing it anyway",
                    server.server_address, STOP_WAIT_SECONDS)


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
