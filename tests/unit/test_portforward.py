"""Port-forward over WebSocket: kubectl's SPDY/3.1 tunnel and the channel protocol of the Python
client and our CLI, against a real API server whose node proxy dials a local echo server."""

import socket
import struct
import threading
import zlib

import pytest
from spdy.dictionary import zdict

from minikube_py.api import errors, exec_stream
from minikube_py.apiserver import portforward
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.client.transport import HttpTransport
from minikube_py.store import Store
from tests.unit.test_exec_stream import open_descriptors, registry_with_pod, wait_until

PODS = "/api/v1/namespaces/default/pods"


class EchoServer:
    """Answers every connection by sending back what it reads, upper-cased, until end of input."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(connection,), daemon=True).start()

    @staticmethod
    def _echo(connection):
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data.upper())

    def close(self):
        self.listener.close()


class DialingProxy:
    """The node agent's port_forward: pod port 80 is the echo server, anything else is refused."""

    def __init__(self, echo):
        self.echo = echo
        self.dialed = []

    def port_forward(self, namespace, name, port):
        self.dialed.append(port)
        if port != 80:
            raise errors.ApiError(f"error forwarding port {port} to pod {name}, uid u: failed to connect to "
                                  f"localhost:{port} inside the pod's network namespace: Connection refused")
        return socket.create_connection(("127.0.0.1", self.echo.port))


@pytest.fixture
def api(tmp_path):
    store = Store(":memory:")
    echo = EchoServer()
    server = ApiHttpServer(registry_with_pod(store), str(tmp_path / "api.sock"), node_proxy=DialingProxy(echo))
    server.start()
    yield server
    server.stop()
    echo.close()
    store.close()


def connect(api, query, protocols):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(api.socket_path)
    return exec_stream.connect(sock, "localhost", f"{PODS}/web/portforward{query}", protocols)


class SpdyClient:
    """kubectl's side of the tunnel, made with the same framing helpers and its own zlib streams."""

    def __init__(self, api):
        self.channels = connect(api, "", {portforward.SPDY_TUNNEL: portforward.PROTOCOLS[portforward.SPDY_TUNNEL]})
        self.deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
        self.inflate = zlib.decompressobj(zdict=zdict)
        self.buffer = b""

    def send(self, frame):
        self.channels.send(0, frame)

    def open_stream(self, stream_id, headers, fin=False):
        block = self.deflate.compress(portforward.encode_header_block(headers)) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.send(portforward.control_frame(portforward.SYN_STREAM, 1 if fin else 0,
                                            struct.pack(">IIBB", stream_id, 0, 0, 0) + block))

    def frame(self):
        """The next frame from the server as (kind, stream or type, flags, payload); None at the end."""
        while len(self.buffer) < 8 or len(self.buffer) < 8 + int.from_bytes(self.buffer[5:8], "big"):
            message = self.channels.receive()
            if message is None:
                return None
            self.buffer += message[1]
        length = int.from_bytes(self.buffer[5:8], "big")
        frame, self.buffer = self.buffer[:8 + length], self.buffer[8 + length:]
        first, flags, payload = int.from_bytes(frame[:4], "big"), frame[4], frame[8:]
        if first & 0x80000000:
            if first & 0xFFFF == portforward.SYN_REPLY:
                assert portforward.decode_header_block(self.inflate.decompress(payload[4:])) == {}
                return ("reply", int.from_bytes(payload[:4], "big"), flags, b"")
            return ("control", first & 0xFFFF, flags, payload)
        return ("data", first, flags, payload)

    def collect(self, streams):
        """Frames until every stream in `streams` has ended (FIN): {stream: bytes}."""
        received = {stream: b"" for stream in streams}
        open_streams = set(streams)
        while open_streams:
            frame = self.frame()
            assert frame is not None, f"the session ended with streams {open_streams} open"
            kind, stream, flags, payload = frame
            if kind == "data":
                received[stream] += payload
                if flags & portforward.FLAG_FIN:
                    open_streams.discard(stream)
        return received


def test_kubectls_spdy_tunnel_forwards_one_connection_per_request_pair(api):
    client = SpdyClient(api)
    assert client.channels.protocol.name == portforward.SPDY_TUNNEL
    client.open_stream(1, {"streamtype": "error", "port": "80", "requestid": "0"})
    assert client.frame() == ("reply", 1, 0, b"")
    client.open_stream(3, {"streamtype": "data", "port": "80", "requestid": "0"})
    assert client.frame() == ("reply", 3, 0, b"")
    client.send(portforward.data_frame(1, b"", fin=True))  # kubectl closes its side of the error stream
    client.send(portforward.data_frame(3, b"hello "))
    client.send(portforward.data_frame(3, b"pod", fin=True))
    assert client.collect([3, 1]) == {3: b"HELLO POD", 1: b""}
    client.send(portforward.control_frame(portforward.PING, 0, struct.pack(">I", 1)))
    assert client.frame() == ("control", portforward.PING, 0, struct.pack(">I", 1))
    client.channels.close()
    assert client.frame() is None


def test_several_requests_share_one_tunnel(api):
    client = SpdyClient(api)
    for request in range(5):
        error, data = 1 + 4 * request, 3 + 4 * request
        client.open_stream(error, {"streamtype": "error", "port": "80", "requestid": str(request)})
        client.open_stream(data, {"streamtype": "data", "port": "80", "requestid": str(request)})
    replies = [client.frame() for _ in range(10)]
    assert sorted(frame[1] for frame in replies) == sorted([1 + 4 * r for r in range(5)] + [3 + 4 * r for r in range(5)])
    for request in range(5):
        client.send(portforward.data_frame(3 + 4 * request, f"request {request}".encode(), fin=True))
    received = client.collect([3 + 4 * r for r in range(5)] + [1 + 4 * r for r in range(5)])
    assert [received[3 + 4 * r] for r in range(5)] == [f"REQUEST {r}".encode() for r in range(5)]
    assert api.node_proxy.dialed == [80] * 5


def test_a_refused_port_is_reported_on_the_error_stream(api):
    client = SpdyClient(api)
    client.open_stream(1, {"streamtype": "error", "port": "81", "requestid": "0"})
    client.open_stream(3, {"streamtype": "data", "port": "81", "requestid": "0"})
    client.frame(), client.frame()
    received = client.collect([1, 3])
    assert b"failed to connect to localhost:81" in received[1] and received[3] == b""


def test_forwards_to_a_closed_port_leak_nothing_and_the_next_forward_works(api):
    """Bad input: a port nothing listens on, through kubectl's SPDY tunnel and the WebSocket
    channel protocol, many times: each says so on its error stream, and no descriptor or thread
    stays behind."""
    descriptors, threads = open_descriptors(), threading.active_count()
    for _ in range(5):
        client = SpdyClient(api)
        client.open_stream(1, {"streamtype": "error", "port": "81", "requestid": "0"})
        client.open_stream(3, {"streamtype": "data", "port": "81", "requestid": "0"})
        client.frame(), client.frame()
        assert b"failed to connect to localhost:81" in client.collect([1, 3])[1]
        client.channels.sock.close()
        channels = connect(api, "?ports=81", {exec_stream.V4: exec_stream.PORT_FORWARD_PROTOCOLS[exec_stream.V4]})
        assert [channels.receive() for _ in range(2)] == [(0, exec_stream.encode_port(81)),
                                                          (1, exec_stream.encode_port(81))]
        assert b"failed to connect to localhost:81" in channels.receive()[1]
        channels.close()
        channels.sock.close()
    wait_until(lambda: open_descriptors() <= descriptors, "the descriptors to be released")
    wait_until(lambda: threading.active_count() <= threads, "the streams' threads to end")
    channels = HttpTransport(socket_path=api.socket_path).port_forward("default", "web", 80)
    assert [channels.receive() for _ in range(2)] == [(0, exec_stream.encode_port(80)), (1, exec_stream.encode_port(80))]
    channels.send(0, b"still serving")
    assert channels.receive() == (0, b"STILL SERVING")
    channels.close()


@pytest.mark.parametrize("headers", [{"streamtype": "data", "port": "http", "requestid": "0"},
                                     {"streamtype": "sideways", "port": "80", "requestid": "0"},
                                     {"streamtype": "data", "port": "70000", "requestid": "0"}])
def test_a_stream_with_bad_headers_is_reset(api, headers):
    client = SpdyClient(api)
    client.open_stream(1, headers)
    kind, frame_type, _, payload = client.frame()
    assert (kind, frame_type) == ("control", portforward.RST_STREAM)
    assert struct.unpack(">II", payload) == (1, portforward.PROTOCOL_ERROR)


def test_a_reset_data_stream_closes_the_pod_connection(api):
    client = SpdyClient(api)
    client.open_stream(1, {"streamtype": "error", "port": "80", "requestid": "0"})
    client.open_stream(3, {"streamtype": "data", "port": "80", "requestid": "0"})
    client.frame(), client.frame()
    client.send(portforward.control_frame(portforward.RST_STREAM, 0, struct.pack(">II", 3, 5)))
    assert client.collect([3, 1]) == {3: b"", 1: b""}


@pytest.mark.parametrize("garbage", [
    portforward.encode_frame(0x80020001, 0, b"\x00" * 12),  # SPDY version 2
    portforward.control_frame(portforward.SYN_STREAM, 0, struct.pack(">IIBB", 1, 0, 0, 0) + b"not zlib"),
])
def test_malformed_spdy_ends_the_session_and_leaks_nothing(api, garbage):
    descriptors = open_descriptors()
    client = SpdyClient(api)
    client.send(garbage)
    while client.frame() is not None:
        pass
    client.channels.sock.close()
    wait_until(lambda: open_descriptors() <= descriptors, "the descriptors to be released")


def test_the_channel_protocol_opens_each_channel_with_its_port(api):
    channels = connect(api, "?ports=80,81", {exec_stream.V4: exec_stream.PORT_FORWARD_PROTOCOLS[exec_stream.V4]})
    port_80, port_81 = exec_stream.encode_port(80), exec_stream.encode_port(81)
    assert [channels.receive() for _ in range(4)] == [(0, port_80), (1, port_80), (2, port_81), (3, port_81)]
    assert b"failed to connect to localhost:81" in channels.receive()[1]
    channels.send(0, b"via channels")
    assert channels.receive() == (0, b"VIA CHANNELS")
    channels.close()


def test_the_client_transport_forwards_a_port(api):
    transport = HttpTransport(socket_path=api.socket_path)
    channels = transport.port_forward("default", "web", 80)
    assert channels.receive() == (0, exec_stream.encode_port(80))
    assert channels.receive() == (1, exec_stream.encode_port(80))
    channels.send(0, b"abc")
    assert channels.receive() == (0, b"ABC")
    channels.close()


def test_port_forward_needs_a_port_and_valid_ones(api):
    transport = HttpTransport(socket_path=api.socket_path)
    for query, message in (("", "at least one port"), ("?ports=0", "invalid port"), ("?ports=http", "invalid port")):
        with pytest.raises(errors.BadRequest, match=message):
            transport.open_channels(f"{PODS}/web/portforward{query}", exec_stream.PORT_FORWARD_PROTOCOLS)
