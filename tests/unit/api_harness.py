"""An in-process API server on a unix socket (and a free TCP port) for unit tests, and raw requests to it."""

from __future__ import annotations

import contextlib
import pathlib
from typing import Iterator

from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.client.transport import UnixHTTPConnection
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from tests.unit.tls_harness import make_credentials, tls_config


@contextlib.contextmanager
def running_server(directory: pathlib.Path) -> Iterator[ApiHttpServer]:
    store = Store(":memory:")
    server = ApiHttpServer(Registry(store, FakeClock()), str(directory / "api.sock"), port=0,
                           tls=tls_config(make_credentials(directory)))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        store.close()


def exchange(server: ApiHttpServer, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, object, bytes]:
    """One request over the socket: (status, the response's headers, its body)."""
    connection = UnixHTTPConnection(server.socket_path, timeout=10)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()
