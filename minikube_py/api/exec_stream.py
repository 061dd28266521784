"""Kubernetes' stream channels over WebSocket: the one wire of exec, attach and port-forward.

kubectl, the official Python client and our own CLI open `exec`, `attach` and `portforward` as a
WebSocket (RFC 6455) that carries one of Kubernetes' channel subprotocols. With the binary ones
(`v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io`) every message starts with one byte
naming its channel and the rest is data; with the base64 ones (`v4.base64.channel.k8s.io`,
`base64.channel.k8s.io`) a message is text: the channel as one ASCII digit, then the data in
base64. For exec and attach the channels are stdin 0, stdout 1, stderr 2, error 3 (v4 and v5: a
`Status` document whose `NonZeroExitCode` cause carries the exit code; before v4: the error's
text), resize 4 (`{"Width": W, "Height": H}` for a TTY). v5 adds the close signal: the message
`[255, N]` says the client will send nothing more on channel N (stdin: end of input). For
port-forward every requested port gets a data and an error channel (2i and 2i+1), each opened by a
message holding the port as two little-endian bytes.

The API server (`apiserver.streams`) and the client (`client.transport`) both drive wsproto's
sans-IO connection through `ChannelSocket` over a blocking socket, so both sides share one codec.
wsproto does the opening handshake, every control frame (ping, pong, close), every text frame
and every frame a client sends (masked). Two paths are ours, for throughput on the data that
dominates exec and port-forward: a server writes the 2-10 byte header of each final, unmasked
binary data frame itself and hands the payload to the socket uncopied, and a client reads such
frames' headers itself and their payloads straight into place; anything else it reads is given
to wsproto whole (`ChannelSocket` says how, and what it measured). `api` imports nothing of ours;
wsproto is its only dependency here.
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
import ssl
import struct
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable

from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Event, Message, Ping, RejectConnection,
                            RejectData, Request, TextMessage)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import generate_accept_token

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255  # v5: [255, channel] closes that channel

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"

# A client's message larger than this closes the connection (1009): input arrives in small pieces.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
RECEIVE_CHUNK = 1024 * 1024
WEBSOCKET_GUID_VERSION = "13"


@dataclass(frozen=True)
class ChannelProtocol:
    """One of Kubernetes' channel subprotocols and what it implies."""

    name: str
    base64: bool = False
    status_document: bool = False  # v4+: the error channel carries a Status as JSON
    close_signal: bool = False  # v5: the client may close its stdin with [255, 0]
    tunnel: bool = False  # no channels: the messages carry another protocol's bytes (SPDY for kubectl)

    def encode(self, channel: int, data: bytes) -> Message[Any]:
        if self.tunnel:
            return BytesMessage(data=data)
        if self.base64:
            return TextMessage(data=chr(ord("0") + channel) + base64.b64encode(data).decode("ascii"))
        return BytesMessage(data=bytes([channel]) + data)

    def decode(self, message: bytes | str) -> tuple[int, bytes] | None:
        """(channel, data) of one whole message; None for an empty message (Kubernetes skips
        them). Raises ValueError for one that cannot be decoded."""
        if not message:
            return None
        if self.tunnel:
            return 0, message.encode() if isinstance(message, str) else bytes(message)
        if self.base64:
            text = message if isinstance(message, str) else message.decode("ascii", errors="replace")
            channel = ord(text[0]) - ord("0")
            if not 0 <= channel <= 9:
                raise ValueError(f"a {self.name} message must start with a channel digit, not {text[0]!r}")
            try:
                return channel, base64.b64decode(text[1:], validate=True)
            except (binascii.Error, ValueError) as error:
                raise ValueError(f"a {self.name} message on channel {channel} is not valid base64: {error}") from None
        data = message.encode() if isinstance(message, str) else bytes(message)
        return data[0], data[1:]


REMOTE_COMMAND_PROTOCOLS = {
    V5: ChannelProtocol(V5, status_document=True, close_signal=True),
    V4: ChannelProtocol(V4, status_document=True),
    V4_BASE64: ChannelProtocol(V4_BASE64, base64=True, status_document=True),
    V1: ChannelProtocol(V1),
    V1_BASE64: ChannelProtocol(V1_BASE64, base64=True),
}
PORT_FORWARD_PROTOCOLS = {
    V4: ChannelProtocol(V4),
    V4_BASE64: ChannelProtocol(V4_BASE64, base64=True),
    V1: ChannelProtocol(V1),
    V1_BASE64: ChannelProtocol(V1_BASE64, base64=True),
}


def choose_protocol(offered: list[str], supported: dict[str, ChannelProtocol]) -> ChannelProtocol:
    """The first subprotocol the client offers that we speak (the client lists its preference);
    no offer at all means the plain binary channel protocol, as Kubernetes' empty name does."""
    if not offered:
        return replace(supported[V1], name="")
    for name in offered:
        if name in supported:
            return supported[name]
    raise ValueError(f"requested protocol(s) are not supported: {offered}; supports {list(supported)}")


def offered_protocols(header: str | None) -> list[str]:
    return [name.strip() for name in (header or "").split(",") if name.strip()]


def exit_status(exit_code: int, command: list[str] | None = None) -> dict[str, Any]:
    """The v4 error-channel Status for a finished command, as the kubelet writes it."""
    if exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    what = f"error executing command [{' '.join(command)}], exit code {exit_code}" if command else \
        f"exit code {exit_code}"
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: {what}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]}}


def failure_status(message: str, reason: str = "InternalError", code: int = 500) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def exit_code_of(status: dict[str, Any]) -> int | None:
    """The exit code an error-channel Status reports: 0 for Success, the ExitCode cause of a
    NonZeroExitCode failure, None for another failure (its message says what went wrong)."""
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", ""))
                except ValueError:
                    return None
    return None


def parse_resize(data: bytes) -> tuple[int, int]:
    """(width, height) of a resize message, `{"Width": 80, "Height": 24}`; ValueError otherwise."""
    try:
        document = json.loads(data)
    except ValueError:
        raise ValueError("a resize message must be JSON like {\"Width\": 80, \"Height\": 24}") from None
    if not isinstance(document, dict):
        raise ValueError("a resize message must be a JSON object with Width and Height")
    width, height = document.get("Width", 0), document.get("Height", 0)
    for name, value in (("Width", width), ("Height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise ValueError(f"resize: {name} must be an integer from 0 to 65535, not {value!r}")
    return width, height


def encode_resize(width: int, height: int) -> bytes:
    return json.dumps({"Width": width, "Height": height}).encode()


def encode_port(port: int) -> bytes:
    return struct.pack("<H", port)


class ChannelSocket:
    """A WebSocket speaking a channel protocol over a blocking socket (plain, unix or TLS).

    `send` may be called from several threads (output and control messages interleave whole);
    one thread calls `receive`. wsproto does the handshake, reads every frame and writes the
    control frames and every client frame; this class only moves bytes and keeps whole messages.
    The one exception is a server's binary data message (exec output, port-forward data): its
    2-10 byte header (RFC 6455 section 5.2: FIN, binary opcode, unmasked length) is written here
    and the payload handed to the socket as it is, because wsproto's serializer copies each
    message four times, which capped exec output at 90-140 MB/s where sending the payload
    uncopied reaches 800-900 MB/s on the same path (measured in one run; docs/performance.md).
    On a plain socket the header and the payload leave in one `sendmsg`; over TLS, small
    payloads are joined to their header and large ones follow it in a second write.

    The client side mirrors this when it reads: at each frame boundary it reads the 2-14 byte
    header, and a final, unmasked binary frame (what a server sends for every data message) is
    read straight into its payload, with no parsing or copy per fragment; every other frame
    (text, fragments, control frames, anything malformed) is handed whole to wsproto, which holds
    no partial frame between calls and so keeps its own state. Reading frames this way took our
    CLI's reading side from about 0.4 to 0.1 s of CPU per 100 MB (docs/performance.md).
    A stalled peer is bounded by the socket's send timeout, set by the server."""

    def __init__(self, sock: socket.socket, connection: Connection | WSConnection, protocol: ChannelProtocol,
                 buffered: bytes = b"", reader: Callable[[int], bytes] | None = None):
        self.sock = sock
        self.protocol = protocol
        self._connection = connection
        self._state_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._read = reader or sock.recv
        self._pending: deque[tuple[int, bytes]] = deque()
        self._fragments: list[Any] = []  # the parts of a message still arriving: all str or all bytes
        self._fragment_bytes = 0
        # Server side, binary channels, no extensions negotiated (accept() offers none): data
        # messages are framed here (see the class docstring).
        self._frames_data = isinstance(connection, Connection) and not connection.client and not protocol.base64
        self._plain = not isinstance(sock, ssl.SSLSocket)  # scatter-gather writes need the kernel's socket
        self.closed = False  # the peer closed (or broke) the connection
        self.close_code: int | None = None
        # Client side: frames are read here (see the class docstring); `_inbox` holds bytes read
        # past the frame being parsed, starting with what arrived after the handshake's answer.
        self._reads_frames = connection.client and reader is None
        self._inbox = bytearray(buffered if self._reads_frames else b"")
        # What arrived with the handshake (bytes the server read ahead, frames wsproto holds).
        self._feed(b"" if self._reads_frames else buffered)

    # -- sending

    def _send_event(self, event: Event) -> None:
        with self._write_lock:
            with self._state_lock:
                data = self._connection.send(event)
            self.sock.sendall(data)

    def send(self, channel: int, data: bytes, preamble: bytes = b"") -> None:
        """One message on `channel`: `preamble + data` (a tunnelled protocol's own frame header
        goes in `preamble`, so the payload is not copied to join them)."""
        if not self._frames_data:
            self._send_event(self.protocol.encode(channel, preamble + data))
            return
        prefix = (b"" if self.protocol.tunnel else bytes([channel])) + preamble
        header = _binary_frame_header(len(prefix) + len(data)) + prefix
        with self._write_lock:
            with self._state_lock:
                if self._connection.state.name != "OPEN":
                    raise BrokenPipeError(f"the WebSocket is {self._connection.state.name.lower()}: no more data")
            if self._plain:
                _send_parts(self.sock, header, data)
            elif len(data) <= SMALL_MESSAGE:
                self.sock.sendall(header + data)
            else:
                self.sock.sendall(header)
                self.sock.sendall(data)

    def send_json(self, channel: int, document: Any) -> None:
        self.send(channel, json.dumps(document, separators=(",", ":")).encode())

    def close(self, code: int = CloseReason.NORMAL_CLOSURE, reason: str = "") -> None:
        """Send the close frame (once); the peer answers with its own and hangs up."""
        try:
            with self._state_lock:
                state = self._connection.state.name
            if state in ("OPEN", "REMOTE_CLOSING"):
                self._send_event(CloseConnection(code=code, reason=reason))
        except OSError:
            pass
        except Exception:  # wsproto refuses a close in a state that no longer allows one: done anyway
            pass

    def shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- receiving

    def receive(self) -> tuple[int, bytes] | None:
        """The next (channel, data) message, or None once the peer closed or the connection broke.
        Undecodable messages are skipped, as Kubernetes skips them; a protocol violation closes
        the connection with the matching close code."""
        if not self._pending and not self.closed and not self._reads_frames:
            self._feed(b"")
        while not self._pending:
            if self.closed:
                return None
            if self._reads_frames:
                try:
                    self._read_frame()
                except (OSError, EOFError):
                    self.closed = True
                continue
            try:
                data = self._read(RECEIVE_CHUNK)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return None
            self._feed(data)
        return self._pending.popleft()

    def _read_frame(self) -> None:
        """Read one whole frame (client side): a final unmasked binary frame straight into its
        message, any other frame through wsproto. EOFError when the connection ends first."""
        header = self._take(2)
        length = header[1] & 0x7F
        extended = b""
        if length == 126:
            extended = self._take(2)
        elif length == 127:
            extended = self._take(8)
        if extended:
            length = int.from_bytes(extended, "big")
        mask = self._take(4) if header[1] & 0x80 else b""
        if length > MAX_MESSAGE_BYTES:
            self.close(CloseReason.MESSAGE_TOO_BIG, f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
            self.closed = True
            return
        if header[0] == 0x82 and not mask and length and not self._fragments and not self.protocol.base64:
            if self.protocol.tunnel:
                self._pending.append((STDIN, self._take(length)))
            else:
                channel = self._take(1)[0]
                self._pending.append((channel, self._take(length - 1)))
            return
        self._feed(header + extended + mask + self._take(length))

    def _take(self, size: int) -> bytes:
        """The next `size` bytes of the connection: from what was read ahead, then from the
        socket (a large remainder straight into the result). EOFError if it ends first."""
        inbox = self._inbox
        if len(inbox) < size and size - len(inbox) >= DIRECT_READ_BYTES:
            result = bytearray(size)
            view = memoryview(result)
            filled = len(inbox)
            view[:filled] = inbox
            inbox.clear()
            while filled < size:
                count = self.sock.recv_into(view[filled:])
                if not count:
                    raise EOFError("the connection ended inside a frame")
                filled += count
            view.release()
            return bytes(result)
        while len(inbox) < size:
            data = self.sock.recv(RECEIVE_CHUNK)
            if not data:
                raise EOFError("the connection ended inside a frame")
            inbox += data
        with memoryview(inbox) as view:
            taken = bytes(view[:size])
        del inbox[:size]
        return taken

    def _feed(self, data: bytes) -> None:
        with self._state_lock:
            if data and self._connection.state.name != "CLOSED":
                self._connection.receive_data(data)
            events = list(self._connection.events())
        for event in events:
            if isinstance(event, Message):
                self._message_part(event)
            elif isinstance(event, Ping):
                try:
                    self._send_event(event.response())
                except OSError:
                    self.closed = True
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
                self.closed = True
                with self._state_lock:
                    state = self._connection.state.name
                if state == "REMOTE_CLOSING":
                    try:
                        self._send_event(event.response())
                    except OSError:
                        pass
                elif state == "OPEN":  # wsproto found a protocol violation: say so and end
                    self.close(event.code, event.reason or "")

    def _message_part(self, event: Message[Any]) -> None:
        self._fragments.append(event.data)
        self._fragment_bytes += len(event.data)
        if self._fragment_bytes > MAX_MESSAGE_BYTES:
            self._fragments.clear()
            self.close(CloseReason.MESSAGE_TOO_BIG, f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
            self.closed = True
            return
        if not event.message_finished:
            return
        message: bytes | str = "".join(self._fragments) if isinstance(event.data, str) else b"".join(
            bytes(part) for part in self._fragments)
        self._fragments.clear()
        self._fragment_bytes = 0
        try:
            decoded = self.protocol.decode(message)
        except ValueError:
            return
        if decoded is not None:
            self._pending.append(decoded)


SMALL_MESSAGE = 4096  # joined with its header into one write; larger payloads are sent uncopied
DIRECT_READ_BYTES = 64 * 1024  # a frame's remainder this large is read into its message directly


def _send_parts(sock: socket.socket, header: bytes, data: bytes) -> None:
    """Write header and payload with one `sendmsg` (no copy of the payload), then whatever a
    partial write left."""
    sent = sock.sendmsg([header, data])
    if sent < len(header):
        sock.sendall(header[sent:])
        sent = len(header)
    if sent - len(header) < len(data):
        with memoryview(data) as view:
            sock.sendall(view[sent - len(header):])


def _binary_frame_header(length: int) -> bytes:
    """RFC 6455 section 5.2: FIN and the binary opcode, then the payload length in 7 bits, or
    126 and 16 bits, or 127 and 64 bits; no mask (a server's frames are never masked)."""
    if length < 126:
        return struct.pack("!BB", 0x82, length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


def accept(sock: socket.socket, key: str, protocol: ChannelProtocol, buffered: bytes = b"",
           reader: Callable[[int], bytes] | None = None) -> tuple[bytes, ChannelSocket]:
    """The server's side of a handshake whose request was already read: the 101 answer to send
    (the caller writes it) and the WebSocket to speak once it is sent."""
    accept_token = generate_accept_token(key.encode("latin-1")).decode("latin-1")
    chosen = f"Sec-WebSocket-Protocol: {protocol.name}\r\n" if protocol.name else ""
    answer = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Accept: {accept_token}\r\n{chosen}\r\n")
    return answer.encode("latin-1"), ChannelSocket(sock, Connection(ConnectionType.SERVER), protocol, buffered, reader)


class HandshakeRejected(Exception):
    """The server answered the upgrade with an HTTP error; `status` and `body` say which."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"the server refused the stream with HTTP {status}")
        self.status = status
        self.body = body


def connect(sock: socket.socket, host: str, target: str, protocols: dict[str, ChannelProtocol],
            headers: list[tuple[str, str]] | None = None) -> ChannelSocket:
    """The client's side: send the upgrade request for `target` on a connected socket and return
    the WebSocket, or raise HandshakeRejected with the server's answer."""
    connection = WSConnection(ConnectionType.CLIENT)
    sock.sendall(connection.send(Request(host=host, target=target, subprotocols=list(protocols),
                                         extra_headers=[(k.encode(), v.encode()) for k, v in headers or []])))
    rejected_status: int | None = None
    body = b""
    head: bytes | None = b""  # the answer's status line and headers until they are whole
    while True:
        data = sock.recv(RECEIVE_CHUNK)
        if not data:
            if rejected_status is not None:
                raise HandshakeRejected(rejected_status, body)
            raise ConnectionError("the server closed the connection during the WebSocket handshake")
        after_head = b""
        if head is not None:
            # wsproto gets the answer's head alone: the frames that may follow it are the
            # ChannelSocket's to read (it reads frames itself), so wsproto must not hold them.
            head += data
            end = head.find(b"\r\n\r\n")
            if end < 0:
                continue
            data, after_head, head = head[:end + 4], head[end + 4:], None
        connection.receive_data(data)
        for event in connection.events():
            if isinstance(event, AcceptConnection):
                chosen = protocols.get(event.subprotocol or V1)
                if chosen is None:
                    raise ConnectionError(f"the server chose a subprotocol we did not offer: {event.subprotocol}")
                return ChannelSocket(sock, connection, chosen, buffered=after_head)
            if isinstance(event, RejectConnection):
                rejected_status = event.status_code
                if not event.has_body:
                    raise HandshakeRejected(event.status_code, b"")
            elif isinstance(event, RejectData):
                body += event.data
                if event.body_finished:
                    raise HandshakeRejected(rejected_status or 0, body)
        if after_head:  # a refusal's body: wsproto reads it
            connection.receive_data(after_head)
            for event in connection.events():
                if isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise HandshakeRejected(rejected_status or 0, body)
