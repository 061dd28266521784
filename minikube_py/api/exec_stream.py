"""The exec wire: how one exec session's bytes travel over an upgraded HTTP connection.

The API server (`apiserver.streams`) and the client (`client.transport`) both speak it, so it is
defined once, here. After `101 Switching Protocols` with `Upgrade: minikube-py-exec`, each side
sends frames: one byte channel, four bytes big-endian length, then the data. Channels are
numbered as Kubernetes' stream channels are (0 stdin, 1 stdout, 2 stderr); 3 carries the exit
code as decimal text and 4 says the client closed its stdin. A WebSocket protocol
(`v5.channel.k8s.io`) can replace this module later without either side changing shape.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

EXEC_UPGRADE = "minikube-py-exec"
STDIN, STDOUT, STDERR, EXIT_CODE, STDIN_CLOSED = 0, 1, 2, 3, 4
FRAME_HEADER = struct.Struct(">BI")


def encode_frame(channel: int, data: bytes) -> bytes:
    return FRAME_HEADER.pack(channel, len(data)) + data


def write_frame(stream: BinaryIO, channel: int, data: bytes) -> None:
    stream.write(encode_frame(channel, data))


def read_frame(stream: BinaryIO) -> tuple[int, bytes] | None:
    """The next frame from a file-like stream, or None at end of stream."""
    header = _read_exactly(stream, FRAME_HEADER.size)
    if header is None:
        return None
    channel, length = FRAME_HEADER.unpack(header)
    data = _read_exactly(stream, length) if length else b""
    return None if data is None else (channel, data)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
