"""Crash-loop back-off: how long the agent waits before restarting a container that exited.

Kubernetes' curve (semantics.md 3.4, client-go's flowcontrol.Backoff as kubelet's doBackOff uses
it): the first restart after a crash is immediate; the next crash waits 10 s, then 20, 40, ...
capped at 300 s. The delay is measured from the exit's finishedAt. The curve starts over (an
immediate restart, then 10 s) when the container crashes more than `reset_after` seconds (10 min,
kubelet's 2 x max) after its last restart. As in client-go, whose entry is updated when the
container is restarted, that is measured from the restart (the run's start, or the moment the
previous back-off ended if that was earlier), never from the previous crash: a container that
waited 5 min and then ran 5 min has not run cleanly for 10.

Each exit is counted once, by container id, so a level-triggered sync may ask again and again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float  # the wait of the exit last counted
    next_delay: float  # the wait of the next crash, unless the curve starts over
    last_finished_at: float
    last_exit_id: str


class CrashLoopBackOff:
    def __init__(self, initial: float = 10.0, maximum: float = 300.0, reset_after: float = 600.0):
        self.initial = initial
        self.maximum = maximum
        self.reset_after = reset_after
        self._entries: dict[tuple, _Entry] = {}

    def restart_delay(self, key: tuple, exit_id: str, started_at: float, finished_at: float) -> float:
        """Seconds after `finished_at` before the container may start again; idempotent per exit_id.

        Worked example (initial 10, max 300): crashes at 1, 2, 13, 34 after 1 s runs wait 0, 10,
        20, 40: client-go's Next sets the entry to 10 s at the first (immediate) restart, and each
        later restart doubles it."""
        entry = self._entries.get(key)
        if entry is not None and entry.last_exit_id == exit_id:
            return entry.delay
        restarted_at = None if entry is None else min(started_at, entry.last_finished_at + entry.delay)
        if restarted_at is None or finished_at - restarted_at > self.reset_after:
            delay, next_delay = 0.0, self.initial
        else:
            delay, next_delay = entry.next_delay, min(entry.next_delay * 2, self.maximum)
        self._entries[key] = _Entry(delay, next_delay, finished_at, exit_id)
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
