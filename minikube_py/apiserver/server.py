"""The API server's listeners: the unix socket (root only) and, with a port, a TCP listener.

`ApiHttpServer` owns the listening sockets, one accept thread per listener, the set of open
connections and watches (so `stop()` can end them at once) and the `HangUpDetector` shared by all
watches. Each connection is served by `handler.ApiRequestHandler` in its own thread.
"""

from __future__ import annotations

import os
import socket
import socketserver
import threading
from http.server import ThreadingHTTPServer

from minikube_py.apiserver.hangups import HangUpDetector
from minikube_py.apiserver.handler import ApiRequestHandler

# The accept loop wakes this often when idle; `stop()` does not wait for it (see _shut_down_now).
SERVE_POLL_SECONDS = 5.0


class _Serving(ThreadingHTTPServer):
    daemon_threads = True
    api: "ApiHttpServer"


class _UnixServing(_Serving):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0


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
