"""What a pod log request may narrow: `sinceSeconds`, `sinceTime` and `limitBytes`.

The node agent reads a container's log and hands it over line by line (apiserver/streams.py
sends it on); the narrowing Kubernetes' kubelet does is done here, on the way out, so the node
proxy's interface stays what it was. Lines older than the `since` moment are dropped (the node
is asked for timestamps to tell, which are cut off again unless the client asked for them), and
the output stops after `limitBytes`, even in the middle of a line, as kubelet's limited writer
does. Bad values get kube-apiserver's answers: a `PodLogOptions` 422 for values out of range, a
400 naming the parameter for one that is not a number or a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from minikube_py.api import errors, times
from minikube_py.apiserver.routing import integer, text


@dataclass(frozen=True)
class LogNarrowing:
    since: float | None  # epoch seconds: lines stamped before are dropped
    limit_bytes: int | None
    timestamps: bool  # whether the client asked to see the timestamps

    @classmethod
    def of(cls, query: dict, pod_name: str, timestamps: bool, now: float | None = None) -> "LogNarrowing":
        since_seconds = integer(query, "sinceSeconds")
        since_text = text(query, "sinceTime")
        limit_bytes = integer(query, "limitBytes")
        tail_lines = integer(query, "tailLines")
        problems = []
        if tail_lines is not None and tail_lines < 0:
            problems.append(("tailLines", f"Invalid value: {tail_lines}: must be greater than or equal to 0"))
        if limit_bytes is not None and limit_bytes < 1:
            problems.append(("limitBytes", f"Invalid value: {limit_bytes}: must be greater than 0"))
        if since_seconds is not None and since_text:
            problems.append(("", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"))
        elif since_seconds is not None and since_seconds < 1:
            problems.append(("sinceSeconds", f"Invalid value: {since_seconds}: must be greater than 0"))
        if problems:
            summary = ", ".join(f"{path}: {message}" if path else message for path, message in problems)
            raise errors.Invalid(f'PodLogOptions "{pod_name}" is invalid: {summary}', problems,
                                 {"name": pod_name, "kind": "PodLogOptions",
                                  "causes": [{"reason": "FieldValueInvalid", "message": message, "field": path}
                                             for path, message in problems]})
        since = None
        if since_text:
            try:
                since = times.parse_time(since_text)
            except ValueError:
                raise errors.BadRequest(f"query parameter sinceTime={since_text[:40]!r}: must be an RFC 3339 time "
                                        "such as 2026-01-02T15:04:05Z") from None
        elif since_seconds is not None:
            since = (time.time() if now is None else now) - since_seconds
        return cls(since, limit_bytes, timestamps)

    @property
    def needs_timestamps(self) -> bool:
        return self.timestamps or self.since is not None

    def apply(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The node's log pieces (each starting with its timestamp when `needs_timestamps`),
        narrowed. Each piece is one line, or one part of a long line, as the node reads them."""
        budget = self.limit_bytes
        for chunk in chunks:
            if self.since is not None:
                stamp, _, rest = chunk.partition(b" ")
                try:
                    if times.parse_time(stamp.decode()) < self.since:
                        continue
                except (ValueError, UnicodeDecodeError):
                    pass  # not a stamped line: keep it
                if not self.timestamps:
                    chunk = rest
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if chunk:
                yield chunk
            if budget is not None and budget <= 0:
                return
