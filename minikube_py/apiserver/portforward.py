"""Port-forward: a pod's TCP ports reached from the host through the API, as clients ask for them.

`GET .../pods/{name}/portforward` upgrades to a WebSocket in one of two shapes:

- `SPDY/3.1+portforward.k8s.io` is kubectl's (1.31 and later): the WebSocket's binary messages
  carry a SPDY/3.1 session. For every local connection kubectl opens two SPDY streams with the
  headers `streamtype: error|data`, `port` and `requestid`; once both of a request are open, the
  server dials the pod's port and copies bytes between it and the data stream, and reports a
  failure as text on the error stream. No maintained Python library speaks SPDY, so the few
  frames this needs (SYN_STREAM, SYN_REPLY, DATA, RST_STREAM, PING, GOAWAY; SETTINGS and
  WINDOW_UPDATE are read and ignored, as Go's spdystream does) are framed here; the header blocks
  are zlib streams primed with the SPDY/3 dictionary that the `spdy-py` package ships.
- `v4.channel.k8s.io` (and the other channel protocols) is the Python client's and our CLI's:
  `?ports=P1,P2`, one connection per port per WebSocket, port i on data channel 2i and error
  channel 2i+1, each channel opened by the port as two little-endian bytes.

The dialing is the node agent's (`NodeProxy.port_forward`): a socket made inside the pod's network
namespace and connected to localhost, as the kubelet does.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import Callable

from spdy.dictionary import zdict as SPDY3_DICTIONARY

from minikube_py.api import errors, exec_stream
from minikube_py.api.exec_stream import ChannelSocket

log = logging.getLogger(__name__)

SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
PROTOCOLS = {**exec_stream.PORT_FORWARD_PROTOCOLS, SPDY_TUNNEL: exec_stream.ChannelProtocol(SPDY_TUNNEL, tunnel=True)}

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
PROTOCOL_ERROR, REFUSED_STREAM = 1, 3
SPDY_VERSION = 3
FRAME_HEADER = struct.Struct(">IBBH")  # 4 bytes, flags, 24-bit length as 1 + 2 bytes
READ_CHUNK = 1024 * 1024  # what a pod's socket holds is read at once, up to this, as one message
MAX_HEADER_BLOCK = 64 * 1024  # decompressed; kubectl sends three short headers
DIAL_TIMEOUT_SECONDS = 5.0

Dial = Callable[[int], socket.socket]


def encode_frame(first_word: int, flags: int, payload: bytes) -> bytes:
    return FRAME_HEADER.pack(first_word, flags, len(payload) >> 16, len(payload) & 0xFFFF) + payload


def control_frame(frame_type: int, flags: int, payload: bytes) -> bytes:
    return encode_frame(0x80000000 | (SPDY_VERSION << 16) | frame_type, flags, payload)


def data_frame_header(stream_id: int, length: int, fin: bool = False) -> bytes:
    return FRAME_HEADER.pack(stream_id & 0x7FFFFFFF, FLAG_FIN if fin else 0, length >> 16, length & 0xFFFF)


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return data_frame_header(stream_id, len(data), fin) + data


def encode_header_block(headers: dict[str, str]) -> bytes:
    parts = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        parts += [struct.pack(">I", len(name)), name.encode(), struct.pack(">I", len(value)), value.encode()]
    return b"".join(parts)


def decode_header_block(block: bytes) -> dict[str, str]:
    """Name/value pairs of an uncompressed SPDY/3 header block; ValueError when malformed."""
    def take(offset: int, size: int) -> bytes:
        if offset + size > len(block):
            raise ValueError("a SPDY header block ends early")
        return block[offset:offset + size]

    count = struct.unpack(">I", take(0, 4))[0]
    offset, headers = 4, {}
    for _ in range(count):
        name_length = struct.unpack(">I", take(offset, 4))[0]
        name = take(offset + 4, name_length).decode("latin-1").lower()
        offset += 4 + name_length
        value_length = struct.unpack(">I", take(offset, 4))[0]
        headers[name] = take(offset + 4, value_length).decode("latin-1")
        offset += 4 + value_length
    return headers


@dataclass
class ForwardedConnection:
    """One of kubectl's requests: its error and data streams and the pod connection behind them."""

    request_id: str
    port: int
    error_stream: int | None = None
    data_stream: int | None = None
    pod: socket.socket | None = None
    copier: threading.Thread | None = None
    to_pod_open: bool = True


@dataclass
class SpdySession:
    """The server side of one kubectl port-forward session, on a WebSocket tunnel. `serve()` reads
    frames on the calling thread; each forwarded connection's pod-to-client copy has a thread."""

    channels: ChannelSocket
    dial: Dial
    _inflate: "zlib._Decompress" = field(default_factory=lambda: zlib.decompressobj(zdict=SPDY3_DICTIONARY))
    _deflate: "zlib._Compress" = field(default_factory=lambda: zlib.compressobj(
        zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, SPDY3_DICTIONARY))
    _requests: dict[str, ForwardedConnection] = field(default_factory=dict)
    _by_stream: dict[int, ForwardedConnection] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self) -> None:
        buffer = bytearray()
        try:
            while (message := self.channels.receive()) is not None:
                buffer += message[1]
                while len(buffer) >= 8:
                    length = int.from_bytes(buffer[5:8], "big")
                    if len(buffer) < 8 + length:
                        break
                    frame = bytes(buffer[:8 + length])
                    del buffer[:8 + length]
                    if not self._frame(frame):
                        return
        except (OSError, ValueError, zlib.error) as error:
            log.debug("a port-forward session ended: %s", error)
        finally:
            self._close_all()

    def _send(self, frame: bytes) -> None:
        self.channels.send(0, frame)

    def _frame(self, frame: bytes) -> bool:
        """Handle one frame; False ends the session."""
        first, flags = int.from_bytes(frame[0:4], "big"), frame[4]
        payload = frame[8:]
        if not first & 0x80000000:
            self._data(first & 0x7FFFFFFF, payload, bool(flags & FLAG_FIN))
            return True
        version, frame_type = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != SPDY_VERSION:
            self._send(control_frame(GOAWAY, 0, struct.pack(">II", 0, PROTOCOL_ERROR)))
            return False
        if frame_type == SYN_STREAM and len(payload) >= 10:
            stream_id = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
            self._open(stream_id, self._headers(payload[10:]), bool(flags & FLAG_FIN))
        elif frame_type in (SYN_REPLY, HEADERS) and len(payload) >= 4:
            self._headers(payload[4:])  # keeps the shared zlib stream in step; nothing to act on
        elif frame_type == RST_STREAM and len(payload) >= 8:
            self._reset(int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF)
        elif frame_type == PING:
            self._send(frame)  # kubectl pings every 10 s and expects its ping back
        elif frame_type == GOAWAY:
            return False
        return True

    def _headers(self, compressed: bytes) -> dict[str, str]:
        block = self._inflate.decompress(compressed, MAX_HEADER_BLOCK)
        if self._inflate.unconsumed_tail:
            raise ValueError(f"a SPDY header block is larger than {MAX_HEADER_BLOCK} bytes")
        return decode_header_block(block)

    def _reply(self, stream_id: int) -> None:
        block = self._deflate.compress(encode_header_block({})) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self._send(control_frame(SYN_REPLY, 0, struct.pack(">I", stream_id) + block))

    def _open(self, stream_id: int, headers: dict[str, str], fin: bool) -> None:
        kind, request_id = headers.get("streamtype"), headers.get("requestid", str(stream_id))
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            port = 0
        if kind not in ("error", "data") or not 0 < port < 65536:
            log.debug("refused a port-forward stream with headers %s", headers)
            self._send(control_frame(RST_STREAM, 0, struct.pack(">II", stream_id, PROTOCOL_ERROR)))
            return
        self._reply(stream_id)
        with self._lock:
            request = self._requests.setdefault(request_id, ForwardedConnection(request_id, port))
            if kind == "error":
                request.error_stream = stream_id
            else:
                request.data_stream = stream_id
                request.to_pod_open = not fin
            self._by_stream[stream_id] = request
        if request.error_stream is not None and request.data_stream is not None:
            self._start(request)

    def _start(self, request: ForwardedConnection) -> None:
        try:
            request.pod = self.dial(request.port)
        except errors.ApiError as error:
            self._finish(request, error.message)
            return
        except OSError as error:
            self._finish(request, f"error forwarding port {request.port}: {error}")
            return
        request.copier = threading.Thread(target=self._copy_to_client, args=(request,),
                                          name="port-forward-copy", daemon=True)
        request.copier.start()

    def _copy_to_client(self, request: ForwardedConnection) -> None:
        assert request.pod is not None and request.data_stream is not None
        try:
            while data := request.pod.recv(READ_CHUNK):
                # The SPDY frame's header rides in front of the data in one WebSocket message.
                self.channels.send(0, data, preamble=data_frame_header(request.data_stream, len(data)))
        except OSError:
            pass
        self._finish(request, "")

    def _finish(self, request: ForwardedConnection, failure: str) -> None:
        """The pod side is done: end both streams (the failure, if any, on the error stream)."""
        with self._lock:
            if self._requests.pop(request.request_id, None) is None:
                return
            for stream_id in (request.data_stream, request.error_stream):
                self._by_stream.pop(stream_id or 0, None)
        if request.pod is not None:
            request.pod.close()
        try:
            if failure and request.error_stream is not None:
                self._send(data_frame(request.error_stream, failure.encode()))
            if request.data_stream is not None:
                self._send(data_frame(request.data_stream, b"", fin=True))
            if request.error_stream is not None:
                self._send(data_frame(request.error_stream, b"", fin=True))
        except OSError:
            pass

    def _data(self, stream_id: int, data: bytes, fin: bool) -> None:
        with self._lock:
            request = self._by_stream.get(stream_id)
        if request is None or stream_id != request.data_stream or request.pod is None:
            return  # the error stream carries nothing from the client; a finished stream, nothing
        try:
            if data and request.to_pod_open:
                request.pod.sendall(data)
            if fin and request.to_pod_open:
                request.to_pod_open = False
                request.pod.shutdown(socket.SHUT_WR)
        except OSError:
            request.to_pod_open = False

    def _reset(self, stream_id: int) -> None:
        with self._lock:
            request = self._by_stream.get(stream_id)
        if request is None:
            return
        if request.pod is not None:
            try:
                request.pod.shutdown(socket.SHUT_RDWR)  # ends its copier, which finishes the request
            except OSError:
                pass
        else:
            with self._lock:
                self._requests.pop(request.request_id, None)
                self._by_stream.pop(stream_id, None)

    def _close_all(self) -> None:
        with self._lock:
            requests = list(self._requests.values())
        copiers = []
        for request in requests:
            if request.pod is not None:
                try:
                    request.pod.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if request.copier is not None:
                copiers.append(request.copier)
        for copier in copiers:
            copier.join(DIAL_TIMEOUT_SECONDS)
        with self._lock:
            leftover = list(self._requests.values())
            self._requests.clear()
        for request in leftover:
            if request.pod is not None:
                request.pod.close()


def parse_ports(query: dict) -> list[int]:
    """The ports of `?ports=8080,9090` (or repeated `ports` / `port`), each 1-65535."""
    ports: list[int] = []
    for value in (query.get("ports") or []) + (query.get("port") or []):
        for text in value.split(","):
            text = text.strip()
            if not text:
                continue
            if not text.isdigit() or not 0 < int(text) < 65536:
                raise errors.BadRequest(f"invalid port {text!r}: a port must be a number from 1 to 65535")
            ports.append(int(text))
    return ports


def serve_channel_ports(channels: ChannelSocket, ports: list[int], dial: Dial) -> None:
    """The channel-protocol port-forward: one pod connection per port for this WebSocket."""
    pods: dict[int, socket.socket] = {}
    copiers = []
    for index, port in enumerate(ports):
        channels.send(2 * index, exec_stream.encode_port(port))
        channels.send(2 * index + 1, exec_stream.encode_port(port))
    for index, port in enumerate(ports):
        try:
            pods[index] = dial(port)
        except (errors.ApiError, OSError) as error:
            channels.send(2 * index + 1, str(getattr(error, "message", error)).encode())
            continue
        copier = threading.Thread(target=_copy_channel, args=(channels, pods[index], 2 * index),
                                  name="port-forward-copy", daemon=True)
        copier.start()
        copiers.append(copier)
    try:
        if not pods:
            return
        while (message := channels.receive()) is not None:
            channel, data = message
            pod = pods.get(channel // 2) if channel % 2 == 0 else None
            if pod is not None and data:
                try:
                    pod.sendall(data)
                except OSError:
                    pods.pop(channel // 2, None)
    finally:
        for pod in pods.values():
            try:
                pod.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for copier in copiers:
            copier.join(DIAL_TIMEOUT_SECONDS)
        for pod in pods.values():
            pod.close()


def _copy_channel(channels: ChannelSocket, pod: socket.socket, channel: int) -> None:
    try:
        while data := pod.recv(READ_CHUNK):
            channels.send(channel, data)
    except OSError:
        pass
    # The pod closed its end: so does this stream (the client sees the WebSocket close).
    channels.close()
