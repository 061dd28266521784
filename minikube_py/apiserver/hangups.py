"""Hang-up detection for streaming watches: one thread and one epoll set for all of them.

A watch's server thread blocks waiting for the next event and never reads from its client, so it
would not notice a client that hung up (kubectl get -w and Ctrl-C) until the next event arrived,
maybe never. `HangUpDetector` watches every streaming connection for end of file and closes the
watch, which wakes the blocked thread. An idle watch therefore costs no wake-ups at all.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading

log = logging.getLogger(__name__)


class HangUpDetector:
    """One thread, one epoll set, for every streaming watch: when a watch's client hangs up (its
    socket turns readable at end of file), the watch is closed, which wakes the server thread
    blocked in it. An idle watch therefore costs no wake-ups at all."""

    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self._wakeup_read, self._wakeup_write = os.pipe()
        self._selector.register(self._wakeup_read, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="api-watch-hang-ups", daemon=True)
        self._thread.start()

    def follow(self, connection: socket.socket, watch) -> None:
        with self._lock:
            self._selector.register(connection, selectors.EVENT_READ, watch)
        os.write(self._wakeup_write, b"x")

    def forget(self, connection: socket.socket) -> None:
        with self._lock:
            try:
                self._selector.unregister(connection)
            except (KeyError, ValueError):
                pass  # already dropped when its client hung up

    def _run(self) -> None:
        while self._running:
            for key, _ in self._selector.select():
                if key.data is None:
                    os.read(self._wakeup_read, 4096)
                    continue
                # Readable: end of file (hung up), a TLS close_notify, or stray bytes. A watch
                # reads nothing more from its client either way, so it is over. The peek is on
                # the raw socket (below TLS), which is all that is needed to tell "readable".
                try:
                    socket.socket.recv(key.fileobj, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self.forget(key.fileobj)
                try:
                    key.data.close()
                except Exception:  # closing one watch must never end the detector for all others
                    log.exception("closing a watch whose client hung up failed")

    def stop(self) -> None:
        self._running = False
        os.write(self._wakeup_write, b"x")
        self._thread.join()
        self._selector.close()
        os.close(self._wakeup_read)
        os.close(self._wakeup_write)
