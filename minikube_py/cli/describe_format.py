"""The pieces every `describe` page shares: kubectl's PrefixWriter, its time formats, the Events table.

kubectl's describers (`kubectl/pkg/describe/describe.go`) write `Key:\\tvalue` lines indented by
level and align them as one Go tabwriter block per run of lines; every page ends with the events
about the object. `cli.describe` (workloads, nodes) and `cli.describe_networking` (Services and
configuration) both build on this module.
"""

from __future__ import annotations

import time

from minikube_py import api
from minikube_py.cli import tables
from minikube_py.cli.context import Context
from minikube_py.cli.tables import NONE, age, align_columns

SKIPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def rfc1123(timestamp: str | None) -> str:
    """Go's `time.RFC1123Z` in local time, as kubectl prints it: `Mon, 02 Jan 2006 15:04:05 -0700`."""
    if not timestamp:
        return "<unset>"
    return time.strftime("%a, %d %b %Y %H:%M:%S %z", time.localtime(api.times.parse_time(timestamp)))


def go_duration(seconds: int | float) -> str:
    """Go's `time.Duration.String()` for whole seconds: `0s`, `10s`, `1m30s`, `1h0m0s`."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


class DescribeWriter:
    """kubectl's PrefixWriter: lines indented two spaces per level, aligned at the end."""

    def __init__(self):
        self.lines: list[str] = []

    def write(self, level: int, text: str) -> None:
        self.lines.append("  " * level + text)

    def multiline_map(self, level: int, title: str, values: dict | None, separator: str,
                      skip: tuple[str, ...] = ()) -> None:
        entries = sorted((key, value) for key, value in (values or {}).items() if key not in skip)
        if not entries:
            self.write(level, f"{title}:\t{NONE}")
            return
        for index, (key, value) in enumerate(entries):
            prefix = f"{title}:" if index == 0 else ""
            self.write(level, f"{prefix}\t{key}{separator}{value}")

    def labels(self, level: int, title: str, labels: dict | None) -> None:
        self.multiline_map(level, title, labels, "=")

    def annotations(self, level: int, title: str, annotations: dict | None) -> None:
        self.multiline_map(level, title, annotations, ": ", SKIPPED_ANNOTATIONS)

    def render(self) -> str:
        return align_columns("\n".join(self.lines))


def describe_events(writer: DescribeWriter, events: list[dict], now: float) -> None:
    if not events:
        writer.write(0, f"Events:\t{NONE}")
        return
    writer.write(0, "Events:")
    writer.write(1, "Type\tReason\tAge\tFrom\tMessage")
    writer.write(1, "----\t------\t----\t----\t-------")
    for event in events:
        count = event.get("count") or 1
        if count > 1:
            interval = (f"{age(event.get('lastTimestamp'), now)} (x{count} over "
                        f"{age(event.get('firstTimestamp'), now)})")
        else:
            interval = age(event.get("firstTimestamp") or event.get("eventTime"), now)
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
        writer.write(1, f"{event.get('type', '')}\t{event.get('reason', '')}\t{interval}\t{source}\t"
                        f"{(event.get('message') or '').strip()}")


def events_about(context: Context, obj: dict) -> list[dict]:
    """Events whose involvedObject is `obj` (by uid), oldest first, like kubectl's SortableEvents."""
    namespace = obj["metadata"].get("namespace") or None
    uid = obj["metadata"].get("uid")
    items = context.transport.list("events", namespace=namespace).get("items") or []
    about = [event for event in items if (event.get("involvedObject") or {}).get("uid") == uid]
    return sorted(about, key=lambda event: api.times.parse_time(
        tables.event_last_seen_time(event) or "1970-01-01T00:00:00Z"))


