"""Reading container logs back out of the kubelet-format files the runtime writes.

Each line of `<pod dir>/logs/<container>/<attempt>.log` is `<RFC 3339 nano time> <stdout|stderr>
<P|F> <text>`: `F` ends a line, `P` is a piece of a longer one. `kubectl logs` shows the text,
optionally prefixed with the time (`--timestamps`), optionally only the last N lines
(`--tail`), and with `-f` keeps reading until the container has exited. The runtime rotates a
full file to `<attempt>.log.1`, `.2`, ...; older rotations come first.
"""

from __future__ import annotations

import glob
import os
import time
from collections import deque
from typing import Callable, Iterable, Iterator

FOLLOW_POLL_SECONDS = 0.1


def parse_line(raw: bytes) -> tuple[bytes, bytes] | None:
    """(timestamp, text with its newline when the line is complete); None for a malformed line."""
    parts = raw.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    timestamp, tag = parts[0], parts[2]  # parts[1] names the stream (stdout/stderr); both are shown
    text = parts[3] if len(parts) == 4 else b""
    return timestamp, text + (b"" if tag == b"P" else b"\n")


def render(raw: bytes, timestamps: bool) -> bytes:
    parsed = parse_line(raw)
    if parsed is None:
        return b""
    timestamp, text = parsed
    return timestamp + b" " + text if timestamps else text


def log_files(path: str) -> list[str]:
    """The rotated pieces of one log, oldest first, then the live file."""
    rotated = [name for name in glob.glob(glob.escape(path) + ".*") if name.rsplit(".", 1)[1].isdigit()]
    rotated.sort(key=lambda name: -int(name.rsplit(".", 1)[1]))
    return rotated + ([path] if os.path.exists(path) else [])


def _lines(paths: Iterable[str]) -> Iterator[bytes]:
    for path in paths:
        try:
            with open(path, "rb") as file:
                yield from file
        except FileNotFoundError:
            continue


def read_log(path: str, tail_lines: int | None = None, timestamps: bool = False, follow: bool = False,
             still_running: Callable[[], bool] = lambda: False, sleep: Callable[[float], None] = time.sleep,
             follow_from: int | None = None) -> Iterator[bytes]:
    """Yield the log's text; with `follow`, keep polling the live file while `still_running()`.
    `follow_from`: the live file's size when the caller started listening (attach measures it
    before it lets input in, so no answer to that input is missed)."""
    lines: Iterable[bytes] = _lines(log_files(path))
    if tail_lines is not None:
        lines = deque(lines, maxlen=max(tail_lines, 0))
    for line in lines:
        chunk = render(line, timestamps)
        if chunk:
            yield chunk
    if not follow:
        return
    # Follow the live file from where the first read ended (its size now).
    position = follow_from if follow_from is not None else os.path.getsize(path) if os.path.exists(path) else 0
    pending = b""
    while True:
        running = still_running()
        try:
            with open(path, "rb") as file:
                if os.fstat(file.fileno()).st_size < position:
                    position = 0  # rotated under us: the live file started over
                file.seek(position)
                data = file.read()
                position = file.tell()
        except FileNotFoundError:
            data = b""
        pending += data
        *complete, pending = pending.split(b"\n")
        for line in complete:
            chunk = render(line, timestamps)
            if chunk:
                yield chunk
        if not data and not running:
            return
        if not data:
            sleep(FOLLOW_POLL_SECONDS)
