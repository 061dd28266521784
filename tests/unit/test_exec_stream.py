"""Kubernetes' channel protocols over WebSocket (exec and attach): framing, v5's close of stdin,
resizes, the error channel's Status, and what malformed input and stalled clients do to the server."""

import json
import os
import queue
import socket
import threading
import time

import pytest
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, TextMessage

from minikube_py.api import errors, exec_stream
from minikube_py.api.exec_stream import CLOSE_SIGNAL, ERROR, RESIZE, STDERR, STDIN, STDOUT
from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.client.transport import HttpTransport
from minikube_py.clock import FakeClock
from minikube_py.store import Store

PODS = "/api/v1/namespaces/default/pods"


# -- the codec, without a server


@pytest.mark.parametrize("name", [exec_stream.V5, exec_stream.V4, exec_stream.V1])
def test_binary_protocols_prefix_each_message_with_its_channel_byte(name):
    protocol = exec_stream.REMOTE_COMMAND_PROTOCOLS[name]
    message = protocol.encode(STDOUT, b"hello")
    assert isinstance(message, BytesMessage) and message.data == b"\x01hello"
    assert protocol.decode(b"\x00input") == (STDIN, b"input")
    assert protocol.decode(b"") is None  # Kubernetes skips empty messages


def test_a_server_frames_its_data_messages_so_a_websocket_client_reads_each_whole():
    """The server writes its binary data frames' headers itself (for throughput): every length
    form (7-bit, 16-bit, 64-bit) must read back as the same messages through wsproto."""
    server_end, client_end = socket.socketpair()
    channels = exec_stream.ChannelSocket(server_end, Connection(ConnectionType.SERVER),
                                         exec_stream.REMOTE_COMMAND_PROTOCOLS[exec_stream.V5])
    sizes = [0, 1, 124, 125, 126, 4095, 4096, 65534, 65535, 65536, 300_000]
    sent = [bytes([index % 251]) * size for index, size in enumerate(sizes)]
    reader = threading.Thread(target=lambda: [channels.send(STDOUT, data) for data in sent] + [channels.close()])
    reader.start()
    client = Connection(ConnectionType.CLIENT)
    received, parts = [], []
    client_end.settimeout(10)
    while len(received) < len(sent):
        client.receive_data(client_end.recv(1 << 20))
        for event in client.events():
            if isinstance(event, BytesMessage):
                parts.append(bytes(event.data))
                if event.message_finished:
                    received.append(b"".join(parts))
                    parts = []
    reader.join(10)
    assert [message[:1] for message in received] == [bytes([STDOUT])] * len(sent)
    assert [message[1:] for message in received] == sent
    with pytest.raises(OSError):  # after the close frame no data may follow
        channels.send(STDOUT, b"late")
    server_end.close()
    client_end.close()


def test_a_client_reads_data_frames_itself_and_hands_every_other_frame_to_wsproto():
    """The client's own frame reading (for throughput): whole binary messages of every length form
    come out as they were sent, in order with a fragmented message, a text message and a ping
    that wsproto reads, and the ping is answered."""
    server_end, client_end = socket.socketpair()
    server_end.settimeout(10)
    client_end.settimeout(10)
    protocol = exec_stream.REMOTE_COMMAND_PROTOCOLS[exec_stream.V5]
    server = exec_stream.ChannelSocket(server_end, Connection(ConnectionType.SERVER), protocol)
    client = exec_stream.ChannelSocket(client_end, Connection(ConnectionType.CLIENT), protocol)
    raw = Connection(ConnectionType.SERVER)  # the same server's frames as wsproto writes them
    from wsproto.events import Ping
    sizes = [1, 124, 125, 126, 65535, 65536, 70_000, 1_000_000]
    sent = [bytes([index % 251]) * size for index, size in enumerate(sizes)]

    def serve():
        for data in sent[:4]:
            server.send(STDOUT, data)
        server_end.sendall(raw.send(BytesMessage(data=b"\x02frag", message_finished=False)) +
                           raw.send(Ping(payload=b"p")) + raw.send(BytesMessage(data=b"mented")) +
                           raw.send(TextMessage(data="\x01text")))
        for data in sent[4:]:
            server.send(STDERR, data, preamble=b"pre")
        server.close()

    writer = threading.Thread(target=serve)
    writer.start()
    received = []
    while (message := client.receive()) is not None:
        received.append(message)
    writer.join(10)
    assert received[:4] == [(STDOUT, data) for data in sent[:4]]
    assert received[4:6] == [(STDERR, b"fragmented"), (STDOUT, b"text")]
    assert received[6:] == [(STDERR, b"pre" + data) for data in sent[4:]]
    assert client.close_code == 1000
    answers = Connection(ConnectionType.SERVER)  # reads what the client sent back
    answers.receive_data(server_end.recv(1 << 16))
    assert [type(event).__name__ for event in answers.events()] == ["Pong", "CloseConnection"]
    server_end.close()
    client_end.close()


def test_frames_that_arrive_with_the_handshake_answer_are_read_as_messages():
    """A server may send its first frames in the same write as its 101 answer."""
    ours, theirs = socket.socketpair()
    ours.settimeout(10)
    theirs.settimeout(10)

    def serve():
        request = b""
        while b"\r\n\r\n" not in request:
            request += theirs.recv(4096)
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        answer, channels = exec_stream.accept(theirs, key.decode(), exec_stream.REMOTE_COMMAND_PROTOCOLS[exec_stream.V5])
        first = b"\x82\x06\x01hello"  # a whole frame: FIN, binary, 6 bytes, channel 1
        theirs.sendall(answer + first)
        channels.send(STDOUT, b"second")
        channels.close()

    server = threading.Thread(target=serve)
    server.start()
    channels = exec_stream.connect(ours, "localhost", f"{PODS}/web/exec?command=true&stdout=true",
                                   exec_stream.REMOTE_COMMAND_PROTOCOLS)
    assert read_all(channels) == [(STDOUT, b"hello"), (STDOUT, b"second")]
    server.join(10)
    ours.close()
    theirs.close()


def test_a_client_refuses_a_frame_larger_than_any_message_without_reading_it():
    ours, theirs = socket.socketpair()
    ours.settimeout(10)
    client = exec_stream.ChannelSocket(ours, Connection(ConnectionType.CLIENT),
                                       exec_stream.REMOTE_COMMAND_PROTOCOLS[exec_stream.V5])
    theirs.sendall(bytes([0x82, 127]) + (exec_stream.MAX_MESSAGE_BYTES + 1).to_bytes(8, "big") + b"\x01abc")
    assert client.receive() is None
    peer = Connection(ConnectionType.SERVER)
    peer.receive_data(theirs.recv(4096))
    closes = [event for event in peer.events() if isinstance(event, CloseConnection)]
    assert [close.code for close in closes] == [1009]
    ours.close()
    theirs.close()


def test_base64_protocols_send_a_channel_digit_and_base64_text():
    protocol = exec_stream.REMOTE_COMMAND_PROTOCOLS[exec_stream.V4_BASE64]
    message = protocol.encode(STDERR, b"\n")
    assert isinstance(message, TextMessage) and message.data == "2Cg=="
    assert protocol.decode("0Zm9vCg==") == (STDIN, b"foo\n")
    with pytest.raises(ValueError, match="not valid base64"):
        protocol.decode("0%%%")
    with pytest.raises(ValueError, match="channel digit"):
        protocol.decode("xZm9v")


def test_only_v5_has_the_close_signal_and_v4_up_a_status_document():
    protocols = exec_stream.REMOTE_COMMAND_PROTOCOLS
    assert [name for name, p in protocols.items() if p.close_signal] == [exec_stream.V5]
    assert {name for name, p in protocols.items() if p.status_document} == {
        exec_stream.V5, exec_stream.V4, exec_stream.V4_BASE64}


def test_the_first_offered_protocol_we_speak_wins_and_no_offer_means_plain_channels():
    supported = exec_stream.REMOTE_COMMAND_PROTOCOLS
    assert exec_stream.choose_protocol(["v6.channel.k8s.io", exec_stream.V4, exec_stream.V5], supported).name == \
        exec_stream.V4
    plain = exec_stream.choose_protocol([], supported)
    assert plain.name == "" and not plain.base64 and not plain.status_document
    with pytest.raises(ValueError, match="not supported"):
        exec_stream.choose_protocol(["SPDY/3.1"], supported)


def test_error_channel_status_carries_the_exit_code_as_kubelet_writes_it():
    assert exec_stream.exit_status(0) == {"metadata": {}, "status": "Success"}
    failed = exec_stream.exit_status(3, ["sh", "-c", "exit 3"])
    assert failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert failed["message"] == ("command terminated with non-zero exit code: error executing command "
                                 "[sh -c exit 3], exit code 3")
    assert exec_stream.exit_code_of(failed) == 3
    assert exec_stream.exit_code_of(exec_stream.exit_status(0)) == 0
    assert exec_stream.exit_code_of(exec_stream.failure_status("container not found")) is None


@pytest.mark.parametrize("data, expected", [
    (b'{"Width": 80, "Height": 24}', (80, 24)),
    (b'{"Width": 0, "Height": 0}', (0, 0)),
    (b'{"Height": 50}', (0, 50)),
])
def test_resize_messages_are_width_and_height_json(data, expected):
    assert exec_stream.parse_resize(data) == expected
    assert exec_stream.parse_resize(exec_stream.encode_resize(*expected)) == expected


@pytest.mark.parametrize("data", [b"80x24", b"[80, 24]", b'{"Width": -1, "Height": 2}',
                                  b'{"Width": "80", "Height": 24}', b'{"Width": 70000, "Height": 1}',
                                  b'{"Width": true, "Height": 1}'])
def test_malformed_resize_messages_are_refused(data):
    with pytest.raises(ValueError, match="resize"):
        exec_stream.parse_resize(data)


def test_a_channel_socket_reassembles_fragmented_messages_and_answers_pings():
    ours, theirs = socket.socketpair()
    peer = Connection(ConnectionType.CLIENT)
    channels = exec_stream.ChannelSocket(ours, Connection(ConnectionType.SERVER),
                                         exec_stream.REMOTE_COMMAND_PROTOCOLS[exec_stream.V5])
    from wsproto.events import Ping
    theirs.sendall(peer.send(BytesMessage(data=b"\x00abc", message_finished=False))
                   + peer.send(Ping(payload=b"p")) + peer.send(BytesMessage(data=b"def")))
    assert channels.receive() == (STDIN, b"abcdef")
    peer.receive_data(theirs.recv(100))
    assert [type(event).__name__ for event in peer.events()] == ["Pong"]
    theirs.sendall(peer.send(CloseConnection(code=1000)))
    assert channels.receive() is None and channels.close_code == 1000
    ours.close()
    theirs.close()


# -- against a real server with a scripted session


class ScriptedSession:
    """An exec or attach session a test drives: output it is fed, input it records."""

    def __init__(self):
        self.output: queue.Queue = queue.Queue()
        self.stdin = bytearray()
        self.stdin_closed = threading.Event()
        self.sizes: list[tuple[int, int]] = []
        self.killed = threading.Event()
        self.exit_code = 0

    def write_stdin(self, data):
        self.stdin.extend(data)

    def close_stdin(self):
        self.stdin_closed.set()

    def resize(self, width, height):
        self.sizes.append((width, height))

    def read(self):
        while (item := self.output.get()) is not None:
            yield item

    def wait(self):
        return 137 if self.killed.is_set() else self.exit_code

    def kill(self):
        if not self.killed.is_set():
            self.killed.set()
            self.output.put(None)

    def finish(self, code):
        self.exit_code = code
        self.output.put(None)


class ScriptedProxy:
    def __init__(self):
        self.sessions: list[ScriptedSession] = []
        self.requests: list[tuple] = []

    def exec(self, namespace, name, container, command, tty=False):
        self.requests.append(("exec", container, tuple(command), tty))
        self.sessions.append(ScriptedSession())
        return self.sessions[-1]

    def attach(self, namespace, name, container, stdin=False, tty=False):
        self.requests.append(("attach", container, stdin, tty))
        self.sessions.append(ScriptedSession())
        return self.sessions[-1]


def registry_with_pod(store):
    """A Registry holding the pod `web` the stream tests reach into."""
    registry = Registry(store, FakeClock())
    registry.create("pods", "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                                        "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    return registry


@pytest.fixture
def api(tmp_path):
    store = Store(":memory:")
    server = ApiHttpServer(registry_with_pod(store), str(tmp_path / "api.sock"), node_proxy=ScriptedProxy(),
                           stream_write_timeout=0.5)
    server.start()
    yield server
    server.stop()
    store.close()


def open_stream(api, query, protocols=(exec_stream.V5,), subresource="exec"):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(api.socket_path)
    supported = {name: exec_stream.REMOTE_COMMAND_PROTOCOLS[name] for name in protocols}
    return exec_stream.connect(sock, "localhost", f"{PODS}/web/{subresource}?{query}", supported)


def wait_until(predicate, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def session_of(api, count=1):
    wait_until(lambda: len(api.node_proxy.sessions) >= count, "the session")
    return api.node_proxy.sessions[count - 1]


def read_all(channels):
    messages = []
    while (message := channels.receive()) is not None:
        messages.append(message)
    return messages


def test_v5_exec_streams_output_then_the_exit_status_and_closes(api):
    channels = open_stream(api, "command=sh&command=-c&command=exit+3&stdout=true&stderr=true&stdin=true")
    assert channels.protocol.name == exec_stream.V5
    session = session_of(api)
    channels.send(STDIN, b"typed")
    session.output.put((STDOUT, b"out"))
    session.output.put((STDERR, b"err"))
    wait_until(lambda: session.stdin == b"typed", "stdin to arrive")
    session.finish(3)
    messages = read_all(channels)
    assert messages[0] == (STDOUT, b"")  # the "stream is up" message on the lowest readable channel
    assert messages[1:3] == [(STDOUT, b"out"), (STDERR, b"err")]
    channel, status = messages[3]
    assert channel == ERROR and exec_stream.exit_code_of(json.loads(status)) == 3
    assert channels.close_code == 1000
    assert api.node_proxy.requests == [("exec", None, ("sh", "-c", "exit 3"), False)]


def test_v5_close_signal_closes_stdin_and_v4_cannot(api):
    channels = open_stream(api, "command=cat&stdout=true&stdin=true")
    session = session_of(api)
    channels.send(CLOSE_SIGNAL, bytes([STDIN]))
    assert session.stdin_closed.wait(5)
    session.finish(0)
    read_all(channels)
    v4 = open_stream(api, "command=cat&stdout=true&stdin=true", protocols=(exec_stream.V4,))
    assert v4.protocol.name == exec_stream.V4
    session = session_of(api, 2)
    v4.send(CLOSE_SIGNAL, bytes([STDIN]))  # not a v4 message: ignored
    v4.send(STDIN, b"x")
    wait_until(lambda: session.stdin == b"x", "stdin after the ignored signal")
    assert not session.stdin_closed.is_set()
    session.finish(0)
    assert json.loads(read_all(v4)[-1][1]) == {"metadata": {}, "status": "Success"}


def test_without_stdin_the_session_input_is_closed_at_once(api):
    channels = open_stream(api, "command=true&stdout=true")
    session = session_of(api)
    assert session.stdin_closed.wait(5)
    session.finish(0)
    read_all(channels)


def test_resize_messages_reach_a_tty_session_and_bad_ones_are_skipped(api):
    channels = open_stream(api, "command=sh&stdout=true&stdin=true&tty=true")
    session = session_of(api)
    channels.send(RESIZE, b"not json")
    channels.send(RESIZE, exec_stream.encode_resize(100, 30))
    wait_until(lambda: session.sizes == [(100, 30)], "the resize")
    session.finish(0)
    read_all(channels)
    assert api.node_proxy.requests[0][3] is True


def test_v1_and_base64_protocols_send_the_error_as_text(api):
    channels = open_stream(api, "command=false&stdout=true&stderr=true",
                           protocols=(exec_stream.V1_BASE64,))
    assert channels.protocol.base64
    session = session_of(api)
    session.output.put((STDOUT, b"\x00binary\xff"))
    session.finish(1)
    messages = read_all(channels)
    assert (STDOUT, b"\x00binary\xff") in messages
    assert messages[-1] == (ERROR, b"command terminated with non-zero exit code: error executing command "
                                   b"[false], exit code 1")


def test_attach_is_served_like_exec_without_a_command(api):
    channels = open_stream(api, "container=main&stdin=true&stdout=true&tty=true", subresource="attach")
    session = session_of(api)
    session.finish(0)
    read_all(channels)
    assert api.node_proxy.requests == [("attach", "main", True, True)]


def test_the_client_transport_speaks_the_same_protocol(api):
    transport = HttpTransport(socket_path=api.socket_path)
    stream = transport.exec("default", "web", None, ["sh"], tty=True, stdin=True)
    session = session_of(api)
    stream.resize(80, 24)
    stream.write_stdin(b"ls\n")
    stream.close_stdin()
    assert session.stdin_closed.wait(5)
    assert session.sizes == [(80, 24)] and session.stdin == b"ls\n"
    session.output.put((STDOUT, b"bin\n"))
    session.finish(2)
    assert list(stream.read()) == [(STDOUT, b"bin\n")]
    assert stream.wait() == 2


def raw_upgrade(api, path, headers):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(api.socket_path)
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", *[f"{k}: {v}" for k, v in headers.items()], "", ""]
    sock.sendall("\r\n".join(lines).encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    while length and len(body) < length[0]:
        body += sock.recv(65536)
    return sock, head + b"\r\n\r\n" + body


UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": exec_stream.V5}


@pytest.mark.parametrize("query, headers, message", [
    ("command=ls&stdout=true", {}, "Upgrade request required"),
    ("command=ls&stdout=true", {**UPGRADE, "Sec-WebSocket-Protocol": "SPDY/3.1"}, "not supported"),
    ("command=ls&stdout=true", {**UPGRADE, "Sec-WebSocket-Version": "8"}, "Sec-WebSocket-Version"),
    ("command=ls", UPGRADE, "at least 1 of stdin, stdout, stderr"),
    ("stdout=true", UPGRADE, "at least one command"),
])
def test_requests_that_cannot_become_a_stream_get_a_status(api, query, headers, message):
    sock, answer = raw_upgrade(api, f"{PODS}/web/exec?{query}", headers)
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert message in answer.decode()
    for session in api.node_proxy.sessions:
        assert session.killed.is_set()


def test_an_unknown_pod_is_a_404_before_any_upgrade(api):
    transport = HttpTransport(socket_path=api.socket_path)
    with pytest.raises(errors.NotFound):
        transport.exec("default", "ghost", None, ["ls"])


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


def stream_threads():
    return [thread for thread in threading.enumerate() if thread.name == "stream-input"]


def test_malformed_frames_close_the_stream_and_leak_nothing(api):
    descriptors = open_descriptors()
    for garbage in (b"\x8f\x80\x00\x00\x00\x00",  # reserved opcode 0xF
                    b"\x82\x05hello",  # a client frame without a mask
                    b"\x81\x82\x00\x00\x00\x00\xff\xfe",  # text that is not UTF-8
                    b"\x89\xfe\x00\x10" + b"\x00" * 4 + b"x" * 16):  # a ping longer than 125 bytes
        sock, answer = raw_upgrade(api, f"{PODS}/web/exec?command=cat&stdout=true&stdin=true", UPGRADE)
        assert answer.startswith(b"HTTP/1.1 101")
        session = session_of(api, len(api.node_proxy.sessions) or 1)
        sock.sendall(garbage)
        assert session.killed.wait(5), f"the session outlived a malformed frame {garbage!r}"
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
        assert b"\x88" in rest  # a close frame came back before the server hung up
        sock.close()
    wait_until(lambda: not stream_threads(), "the streams' threads to end")
    wait_until(lambda: open_descriptors() <= descriptors, "the descriptors to be released")


def test_a_client_that_never_reads_is_cut_off_and_leaks_nothing(api):
    descriptors = open_descriptors()
    sock, answer = raw_upgrade(api, f"{PODS}/web/exec?command=yes&stdout=true", UPGRADE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    session = session_of(api)
    for _ in range(2000):  # far more than the socket buffers hold
        session.output.put((STDOUT, b"y" * 65536))
    assert session.killed.wait(20), "the server kept writing to a client that reads nothing"
    sock.close()
    wait_until(lambda: not stream_threads(), "the stream's threads to end")
    wait_until(lambda: open_descriptors() <= descriptors, "the descriptors to be released")


def test_a_client_that_hangs_up_mid_session_kills_it(api):
    channels = open_stream(api, "command=sleep&stdout=true")
    session = session_of(api)
    channels.sock.close()
    assert session.killed.wait(5)
    wait_until(lambda: not stream_threads(), "the stream's threads to end")


def test_a_client_reads_whole_frames_over_tls_too(tmp_path):
    """Over TLS a large frame arrives a record at a time: the client still reads each message whole
    (as the API server reads a node's kubelet port through RemoteNodeProxy)."""
    import ssl

    from cryptography.hazmat.primitives import serialization

    from minikube_py.apiserver import certificates

    ca, ca_key = certificates.make_ca("frames")
    leaf, key = certificates.issue(ca, ca_key, "localhost", hosts=("127.0.0.1",))
    (tmp_path / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        plain_client = socket.create_connection(listener.getsockname(), timeout=10)
        plain_server, _ = listener.accept()
    protocol = exec_stream.REMOTE_COMMAND_PROTOCOLS[exec_stream.V5]
    sent = [bytes([index]) * size for index, size in enumerate([1, 70_000, 1_000_000, 3])]

    def serve():
        with server_context.wrap_socket(plain_server, server_side=True) as sock:
            channels = exec_stream.ChannelSocket(sock, Connection(ConnectionType.SERVER), protocol)
            for data in sent:
                channels.send(STDOUT, data)
            channels.close()
            sock.recv(1024)  # the client's close frame

    server = threading.Thread(target=serve)
    server.start()
    with client_context.wrap_socket(plain_client) as sock:
        channels = exec_stream.ChannelSocket(sock, Connection(ConnectionType.CLIENT), protocol)
        assert read_all(channels) == [(STDOUT, data) for data in sent]
    server.join(10)
