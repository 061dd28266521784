"""The registry client's transport (httpx's interface over urllib3) against a real HTTP server on
127.0.0.1: bodies streamed whole, connections reused, redirects left to httpx, request bodies
sent as framed, and every failure raised as the httpx error the registry client handles."""

from __future__ import annotations

import http.server
import os
import socket
import threading

import httpx
import pytest

from minikube_py.runtime.images.transport import Urllib3Transport

BODY = os.urandom(3 << 20)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: set[int] = set()
    uploads: list[bytes] = []

    def log_message(self, *arguments) -> None:
        pass

    def do_GET(self) -> None:
        Handler.connections.add(id(self.connection))
        if self.path == "/moved":
            self.send_response(307)
            self.send_header("Location", "/blob")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/cut":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:1000])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def do_PUT(self) -> None:
        Handler.uploads.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def server():
    Handler.connections, Handler.uploads = set(), []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def client():
    with httpx.Client(transport=Urllib3Transport(), follow_redirects=True, timeout=10) as client:
        yield client


def test_a_body_streams_whole_and_the_connection_serves_the_next_request(server, client):
    for _ in range(2):
        with client.stream("GET", server + "/blob") as response:
            chunks = list(response.iter_bytes())
        assert response.status_code == 200 and b"".join(chunks) == BODY
        assert max(len(chunk) for chunk in chunks) <= 1 << 20
    assert len(Handler.connections) == 1


def test_a_body_left_unread_does_not_spoil_the_next_request(server, client):
    with client.stream("GET", server + "/blob") as response:
        next(response.iter_bytes())
    assert client.get(server + "/blob").content == BODY


def test_redirects_are_followed_by_httpx(server, client):
    response = client.get(server + "/moved")
    assert response.status_code == 200 and response.content == BODY
    assert [r.status_code for r in response.history] == [307]


def test_a_request_body_is_sent_as_framed(server, client):
    assert client.put(server + "/upload", content=b"layer bytes").status_code == 201
    assert Handler.uploads == [b"layer bytes"]


def test_a_refused_connection_is_httpx_connect_error(client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError, match="Connection refused"):
        client.get(f"http://127.0.0.1:{port}/blob")


def test_a_body_cut_short_is_a_transport_error(server, client):
    with pytest.raises(httpx.TransportError):
        with client.stream("GET", server + "/cut") as response:
            for _ in response.iter_bytes():
                pass
