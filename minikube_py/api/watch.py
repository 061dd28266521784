"""The shape every watch has, wherever its events come from (as apimachinery's pkg/watch).

The store's watcher, the Registry's filtered watch and the HTTP client's watch all hand out
events through `next(timeout)`; this base class turns that into plain iteration that ends when the
stream is closed or ends.
"""

from __future__ import annotations

from typing import Any


class EventStream:
    """Iteration over `next(timeout)`: each step waits for the next event and iteration ends
    when `next` returns None (the stream was closed or ended)."""

    def next(self, timeout: float | None = None) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Any:
        event = self.next()
        if event is None:
            raise StopIteration
        return event
