"""Timestamps as Kubernetes writes them, and kubectl's AGE column.

Objects carry RFC 3339 strings with second precision (`2026-11-21T22:30:00Z`); code computes
with epoch floats. `human_duration` is apimachinery's `HumanDuration`
(`pkg/util/duration/duration.go`), rule for rule, so AGE columns match kubectl.
"""

from __future__ import annotations

from datetime import datetime, timezone

_MONTH_TO_SECOND = "%m-%dT%H:%M:%SZ"  # the year is formatted by hand: glibc does not zero-pad %Y


# RFC 3339 has four-digit years; a time past either end (now + a grace period of 2**63 - 1
# seconds) is written as the end, so it sorts after every real time and never fails to format.
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()
_EARLIEST = datetime(1, 1, 1, tzinfo=timezone.utc).timestamp()


# The last second formatted and its text: every write stamps the current second, often many
# times within it, and strftime was a tenth of the cost of a small create.
_last_formatted: tuple[int, str] = (0, "1970-01-01T00:00:00Z")


def format_time(epoch: float) -> str:
    """`1800000000.7` -> `"2027-01-15T08:00:00Z"` (UTC, fractions dropped as Kubernetes does)."""
    global _last_formatted
    second = int(min(max(epoch, _EARLIEST), _LATEST) // 1)
    last = _last_formatted
    if last[0] == second:
        return last[1]
    moment = datetime.fromtimestamp(second, tz=timezone.utc)
    text = f"{moment.year:04d}-{moment.strftime(_MONTH_TO_SECOND)}"
    _last_formatted = (second, text)
    return text


def parse_time(text: str) -> float:
    """An RFC 3339 timestamp (`Z` or an offset, optional fraction) as epoch seconds.

    Raises ValueError naming the text when it is not a timestamp.
    """
    if not isinstance(text, str):
        raise ValueError(f"timestamp must be a string like 2026-11-21T22:30:00Z, got {text!r}")
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueError(f"invalid timestamp {text!r}: expected RFC 3339 such as 2026-11-21T22:30:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError(f"invalid timestamp {text!r}: a time zone is required (e.g. a trailing Z)")
    return parsed.timestamp()


def human_duration(seconds: float) -> str:
    """kubectl's AGE text for a duration: `45s`, `3m20s`, `17m`, `5h3m`, `20h`, `3d4h`, `42d`, `3y2d`."""
    whole_seconds = int(seconds)  # truncates toward zero, like Go's int(d.Seconds())
    if whole_seconds < -1:
        return "<invalid>"
    if whole_seconds < 0:
        return "0s"
    if whole_seconds < 60 * 2:
        return f"{whole_seconds}s"
    minutes = whole_seconds // 60
    if minutes < 10:
        remainder = whole_seconds % 60
        return f"{minutes}m" if remainder == 0 else f"{minutes}m{remainder}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        remainder = minutes % 60
        return f"{hours}h" if remainder == 0 else f"{hours}h{remainder}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        remainder = hours % 24
        return f"{hours // 24}d" if remainder == 0 else f"{hours // 24}d{remainder}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"
