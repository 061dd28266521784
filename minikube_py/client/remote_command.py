"""The client side of an exec or attach: a command's output, input, terminal size and exit code
over Kubernetes' WebSocket channel protocol.

`HttpTransport.exec` and `attach` open the WebSocket (`api.exec_stream` speaks the protocol) and
hand back an `ExecStream`, which the CLI's `exec`, `run -it` and `cp` drive. It lives apart from
the transport so that commands which open no stream never import the WebSocket library.
"""

from __future__ import annotations

import json
from typing import Iterator

from minikube_py.api import errors, exec_stream
from minikube_py.api.exec_stream import CLOSE_SIGNAL, ERROR, RESIZE, STDERR, STDIN, STDOUT


class ExecStream:
    """An exec or attach on the server, over a WebSocket speaking v5.channel.k8s.io (or v4 for an
    older server): the client side of `ExecSession`."""

    def __init__(self, channels: exec_stream.ChannelSocket):
        self._channels = channels
        self._exit_code: int | None = None
        self._failure: str | None = None
        self._finished = False

    def _send(self, channel: int, data: bytes) -> None:
        # A command may exit (and the server close the stream) before it read its input; the
        # input is then simply not wanted any more, as with a pipe to a finished process.
        try:
            self._channels.send(channel, data)
        except OSError:
            pass

    def write_stdin(self, data: bytes) -> None:
        self._send(STDIN, data)

    def close_stdin(self) -> None:
        """End of input. v5 says so with its close signal; v4 has no way to, so it is a no-op."""
        if self._channels.protocol.close_signal:
            self._send(CLOSE_SIGNAL, bytes([STDIN]))

    def resize(self, width: int, height: int) -> None:
        self._send(RESIZE, exec_stream.encode_resize(width, height))

    def read(self) -> Iterator[tuple[int, bytes]]:
        """(1 stdout | 2 stderr, data) until the command exits."""
        while not self._finished:
            message = self._channels.receive()
            if message is None:
                self._finished = True
                break
            channel, data = message
            if channel == ERROR:
                self._error_channel(data)
            elif channel in (STDOUT, STDERR) and data:
                yield channel, data

    def _error_channel(self, data: bytes) -> None:
        if not data:
            return
        if self._channels.protocol.status_document:
            try:
                status = json.loads(data)
            except ValueError:
                self._failure = data.decode(errors="replace")
                return
            self._exit_code = exec_stream.exit_code_of(status)
            if self._exit_code is None:
                self._failure = str(status.get("message") or status)
        else:
            self._failure = data.decode(errors="replace")

    def wait(self) -> int:
        """The command's exit code (output not read yet is discarded)."""
        for _ in self.read():
            pass
        self.close()
        if self._failure is not None and self._exit_code is None:
            raise errors.ApiError(self._failure)
        if self._exit_code is None:
            if self._channels.close_code == 1000:  # a clean end with nothing on the error channel: success
                return 0
            raise errors.ApiError("the exec stream ended before the command's exit code arrived")
        return self._exit_code

    def kill(self) -> None:
        """Hang up; the server kills the command."""
        self.close()

    def close(self) -> None:
        self._finished = True
        self._channels.close()
        self._channels.shutdown()
        self._channels.sock.close()
