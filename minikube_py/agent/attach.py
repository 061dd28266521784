"""attach: a running container's output as it is logged, and its stdin or terminal.

`kubectl attach` and `kubectl run -it` join a container's main process. The output comes from the
container's log file, followed from the moment of attaching (the monitor logs a TTY's output as
it arrives, unfinished lines too, so a shell's prompt shows), so any number of clients may attach
and attaching costs the container nothing. Input goes to the runtime's `ContainerInput`: the
TTY's master or the stdin pipe. Detaching (the client hangs up) ends the session, not the
container; with `stdinOnce` the container's stdin then closes for good, as the kubelet does.
The session ends by itself when the container exits; its exit code is the pod's to report
(kubectl reads it from the pod's status), so the stream's status is Success.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator

from minikube_py.runtime.types import ContainerInput

Output = Callable[[Callable[[], bool]], Iterator[bytes]]


class AttachSession:
    """The `ExecSession` shape over an attached container: stdout is the logged output."""

    def __init__(self, output: Output, container_input: ContainerInput | None, on_detach: Callable[[], None]):
        self._detached = threading.Event()
        self._output = output(lambda: not self._detached.is_set())
        self._input = container_input
        self._on_detach = on_detach

    def write_stdin(self, data: bytes) -> None:
        if self._input is not None:
            self._input.write(data)

    def close_stdin(self) -> None:
        """The client's end of input: a terminal gets its EOF character; a pipe is closed for good
        when the container asked for stdinOnce (its monitor drops the last write end)."""
        if self._input is not None:
            self._input.close_stdin()
            if not getattr(self._input, "tty", False):
                self._on_detach()

    def resize(self, width: int, height: int) -> None:
        if self._input is not None:
            self._input.resize(width, height)

    def read(self) -> Iterator[tuple[int, bytes]]:
        for chunk in self._output:
            yield 1, chunk

    def wait(self) -> int:
        return 0

    def kill(self) -> None:
        """Detach: stop following the output and let go of the input (the container runs on)."""
        if self._detached.is_set():
            return
        self._detached.set()
        if self._input is not None:
            self._input.close()
        self._on_detach()
