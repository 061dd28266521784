"""A program run on a pseudo-terminal of its own, as a user's terminal runs it: `kubectl exec -it`,
`kubectl debug -it`, `run -it` and our CLI's `attach -it` are driven through it by the e2e tests.

The terminal is 30 rows by 100 columns, so a test can check that the size reached the container
(`stty size` prints `30 100`). Output is whatever the program wrote to the terminal: stdout and
stderr together, with the terminal's carriage returns.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time

ROWS, COLUMNS = 30, 100


class Terminal:
    """One program on a pty: `expect` output, `type` input, read its `exit_code`."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
            os.execvpe(argv[0], argv, env)
        self.output = b""

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def expect(self, token: bytes, timeout: float = 20, since: int = 0) -> bytes:
        deadline = time.monotonic() + timeout
        while token not in self.output[since:]:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{token!r} did not appear; the terminal shows:\n{self.text()}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:
                    break
        assert token in self.output[since:], f"{token!r} did not appear:\n{self.text()}"
        return self.output

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def press_enter_until(self, token: bytes = b"# ", timeout: float = 20) -> None:
        """kubectl's "try pressing enter", done until `token` (the shell's prompt) shows: input typed
        before the client has put its terminal in raw mode may be flushed away."""
        deadline = time.monotonic() + timeout
        seen = len(self.output)
        while True:
            self.type("\r")
            try:
                self.expect(token, timeout=1.0, since=seen)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    def press_enter_until_prompt(self, timeout: float = 20) -> None:
        self.press_enter_until(b"# ", timeout)

    def exit_code(self, timeout: float = 20) -> int:
        """The program's exit code once it ends (its remaining output read); killed after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._drain()
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:
                    pass
        self.kill()
        raise AssertionError(f"the terminal's program did not exit:\n{self.text()}")

    def _drain(self) -> None:
        while select.select([self.fd], [], [], 0)[0]:
            try:
                piece = os.read(self.fd, 65536)
            except OSError:
                return
            if not piece:
                return
            self.output += piece

    def kill(self) -> None:
        """End the program at once (a test that failed midway), closing the terminal."""
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass
