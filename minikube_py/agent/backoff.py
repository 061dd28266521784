"""Crash-loop back-off: how long the agent waits before restarting a container that exited.

Kubernetes' curve (semantics.md 3.4): 10 s, doubling per crash, capped at 300 s; the delay is
measured from the exit's finishedAt; it starts over when the container crashes `reset_after`
seconds (10 min, kubelet's 2 x max) or more after its last restart. As in client-go's Backoff,
whose entry is updated when the container is restarted, that is measured from the restart (the
run's start, or the moment the previous back-off ended if that was earlier), never from the
previous crash: a container that waited 5 min and then ran 5 min has not run cleanly for 10. Unlike the
kubelet's code, whose very first restart is immediate, the first restart here also waits the
initial delay (the design asks for back-off from the first crash, as users observe it).

Each exit is counted once, by container id, so a level-triggered sync may ask again and again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    last_finished_at: float
    last_exit_id: str


class CrashLoopBackOff:
    def __init__(self, initial: float = 10.0, maximum: float = 300.0, reset_after: float = 600.0):
        self.initial = initial
        self.maximum = maximum
        self.reset_after = reset_after
        self._entries: dict[tuple, _Entry] = {}

    def restart_delay(self, key: tuple, exit_id: str, started_at: float, finished_at: float) -> float:
        """Seconds after `finished_at` before the container may start again; idempotent per exit_id."""
        entry = self._entries.get(key)
        if entry is not None and entry.last_exit_id == exit_id:
            return entry.delay
        if entry is None or finished_at - min(started_at, entry.last_finished_at + entry.delay) >= self.reset_after:
            delay = self.initial
        else:
            delay = min(entry.delay * 2, self.maximum)
        self._entries[key] = _Entry(delay, finished_at, exit_id)
        return delay

    def forget(self, key_prefix: str) -> None:
        """Drop every entry whose key starts with `key_prefix` (a pod uid) once the pod is gone."""
        for key in [key for key in self._entries if key[0] == key_prefix]:
            del self._entries[key]


def format_duration(seconds: float) -> str:
    """Go's time.Duration String, as kubelet prints it in the CrashLoopBackOff message:
    500ms, 10s, 1m20s, 5m0s, 1.5s."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = f"{secs:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{int(hours)}h{int(minutes)}m{secs_text}s"
    if minutes:
        return f"{int(minutes)}m{secs_text}s"
    return f"{secs_text}s"
