"""Cron schedules as Kubernetes reads them: five fields, descriptors, and the next time they fire.

A CronJob's `spec.schedule` is parsed by the library Kubernetes uses (robfig/cron v3's standard
parser), so what it accepts and refuses, its error texts and the times it computes are what a user
of this project must get too: the API server validates a schedule with `parse_schedule`, and the
CronJob controller asks `Schedule.next(after)` for the next start. Times are epoch seconds;
`next` works in the schedule's time zone (`zoneinfo`), walking fields the way the library does so
that daylight-saving changes give the same answers (a wall time skipped by a spring-forward does
not fire that day; days are always found at local midnight).

Syntax: `minute hour day-of-month month day-of-week`; each field a list of `*`, `?` (as `*`),
`N`, `N-M`, with an optional `/step` (`N/step` means `N-max/step`); months `jan`-`dec` and
weekdays `sun`-`sat` by name; `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
`@hourly` and `@every <duration>`. When neither day field is a `*`, a day matches if either does.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STAR_BIT = 1 << 63
MAX_SEARCH_YEARS = 5  # the library gives up after five years: such a schedule never fires


class ScheduleError(ValueError):
    """A schedule the parser refuses; the text is the library's message."""


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int]


_MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
MINUTES = _Bounds(0, 59, {})
HOURS = _Bounds(0, 23, {})
DAYS_OF_MONTH = _Bounds(1, 31, {})
MONTHS = _Bounds(1, 12, _MONTH_NAMES)
DAYS_OF_WEEK = _Bounds(0, 6, _DAY_NAMES)

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _parse_int(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ScheduleError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    number = int(text)
    if number < 0:
        raise ScheduleError(f"negative number ({number}) not allowed: {text}")
    return number


def _int_or_name(text: str, names: dict[str, int]) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    return _parse_int(text)


def _parse_range(expression: str, bounds: _Bounds) -> int:
    """One comma-separated part (`*/5`, `1-5`, `mon`) as a bit set of the values it allows."""
    range_and_step = expression.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    extra = 0
    if low_and_high[0] in ("*", "?"):
        start, end, extra = bounds.low, bounds.high, STAR_BIT
    else:
        start = _int_or_name(low_and_high[0], bounds.names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int_or_name(low_and_high[1], bounds.names)
        else:
            raise ScheduleError(f"too many hyphens: {expression}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _parse_int(range_and_step[1])
        if single:
            end = bounds.high  # "N/step" means "N-max/step"
        if step > 1:
            extra = 0
    else:
        raise ScheduleError(f"too many slashes: {expression}")
    if start < bounds.low:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({bounds.low}): {expression}")
    if end > bounds.high:
        raise ScheduleError(f"end of range ({end}) above maximum ({bounds.high}): {expression}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expression}")
    if step == 0:
        raise ScheduleError(f"step of range should be a positive number: {expression}")
    bits = 0
    for value in range(start, end + 1, step):
        bits |= 1 << value
    return bits | extra


def _parse_field(field: str, bounds: _Bounds) -> int:
    bits = 0
    for part in field.split(","):
        bits |= _parse_range(part, bounds)
    return bits


def _parse_duration(text: str) -> float:
    """Go's time.ParseDuration for the positive durations `@every` takes (`1h30m`, `90s`)."""
    if not text or not re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text):
        raise ScheduleError(f'failed to parse duration {text}: time: invalid duration "{text}"')
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))


class Schedule:
    """What `next(after)` asks of a parsed schedule."""

    def next(self, after: float) -> float | None:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """Five fields as bit sets, read in `zone` (None: UTC)."""

    minutes: int
    hours: int
    days_of_month: int
    months: int
    days_of_week: int
    zone: str | None = None

    def in_zone(self, zone: str | None) -> "CronSchedule":
        return CronSchedule(self.minutes, self.hours, self.days_of_month, self.months, self.days_of_week, zone)

    def _day_matches(self, moment: datetime) -> bool:
        day_of_month = (1 << moment.day) & self.days_of_month > 0
        day_of_week = (1 << ((moment.weekday() + 1) % 7)) & self.days_of_week > 0
        if self.days_of_month & STAR_BIT or self.days_of_week & STAR_BIT:
            return day_of_month and day_of_week
        return day_of_month or day_of_week

    def next(self, after: float) -> float | None:
        """The first time after `after` (epoch seconds) that matches, or None within five years.

        Like the library: instants move by absolute hours and minutes, days and months by the
        calendar at local midnight, so DST transitions behave as they do in Kubernetes.
        """
        zone = _zone(self.zone)
        # Start at the next whole second.
        moment = datetime.fromtimestamp(int(after) + 1, zone)
        year_limit = moment.year + MAX_SEARCH_YEARS
        added = False
        while moment.year <= year_limit:
            wrapped = False
            while not (1 << moment.month) & self.months:
                if not added:
                    added = True
                    moment = _local(zone, moment.year, moment.month, 1)
                moment = _add_months(zone, moment)
                if moment.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self._day_matches(moment):
                if not added:
                    added = True
                    moment = _local(zone, moment.year, moment.month, moment.day)
                moment = _add_day(zone, moment)
                if moment.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << moment.hour) & self.hours:
                if not added:
                    added = True
                    moment = _local(zone, moment.year, moment.month, moment.day, moment.hour)
                moment = _shift(zone, moment, 3600)
                if moment.hour == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << moment.minute) & self.minutes:
                if not added:
                    added = True
                    moment = _shift(zone, moment, -moment.second)
                moment = _shift(zone, moment, 60)
                if moment.minute == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            if moment.second != 0:
                # The seconds field of a standard schedule is 0: on to the next minute, and check again.
                moment = _shift(zone, moment, 60 - moment.second)
                continue
            return moment.timestamp()
        return None


@dataclass(frozen=True)
class EverySchedule(Schedule):
    """`@every <duration>`: at fixed intervals (whole seconds, at least one) from `after`."""

    seconds: int

    def next(self, after: float) -> float | None:
        return float(int(after) + self.seconds)


def _zone(name: str | None) -> timezone | ZoneInfo:
    return ZoneInfo(name) if name else timezone.utc


def _local(zone: timezone | ZoneInfo, year: int, month: int, day: int, hour: int = 0) -> datetime:
    """Go's time.Date in `zone` (fold 0: a skipped wall time lands after the gap, as in Go)."""
    naive = datetime(year, month, 1) + timedelta(days=day - 1, hours=hour)
    return datetime.fromtimestamp(naive.replace(tzinfo=zone).timestamp(), zone)


def _shift(zone: timezone | ZoneInfo, moment: datetime, seconds: float) -> datetime:
    """An absolute shift (Go's Time.Add), seen again in `zone`."""
    return datetime.fromtimestamp(moment.timestamp() + seconds, zone)


def _add_months(zone: timezone | ZoneInfo, moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return _local(zone, year, month, 1)


def _add_day(zone: timezone | ZoneInfo, moment: datetime) -> datetime:
    """Midnight of the next day; as the library, nudge back to midnight if DST moved it."""
    following = _local(zone, moment.year, moment.month, moment.day + 1)
    if following.hour != 0:
        if following.hour > 12:
            following = _shift(zone, following, (24 - following.hour) * 3600)
        else:
            following = _shift(zone, following, -following.hour * 3600)
    return following


def parse_schedule(text: str, zone: str | None = None) -> Schedule:
    """robfig/cron's ParseStandard: a Schedule, or ScheduleError with the library's message."""
    if not text:
        raise ScheduleError("empty spec string")
    if zone is not None:
        try:
            _zone(zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ScheduleError(f"provided bad location {zone}: {error}") from None
    if text.startswith("@"):
        if text.startswith("@every "):
            seconds = int(_parse_duration(text[len("@every "):]))
            return EverySchedule(max(seconds, 1))
        expansion = DESCRIPTORS.get(text)
        if expansion is None:
            raise ScheduleError(f"unrecognized descriptor: {text}")
        text = expansion
    fields = text.split()
    if len(fields) != 5:
        listed = "[" + " ".join(fields) + "]"
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: {listed}")
    return CronSchedule(
        _parse_field(fields[0], MINUTES),
        _parse_field(fields[1], HOURS),
        _parse_field(fields[2], DAYS_OF_MONTH),
        _parse_field(fields[3], MONTHS),
        _parse_field(fields[4], DAYS_OF_WEEK),
        zone,
    )


def time_zone_problem(name: str) -> str | None:
    """What is wrong with a CronJob's `timeZone`, as Kubernetes words it, or None."""
    if name == "":
        return "timeZone must be nil or non-empty string"
    if name.lower() == "local":
        return "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
    if name.startswith("/") or ".." in name.split("/") or "\\" in name:
        return f"unknown time zone {name}"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name}"
    return None
