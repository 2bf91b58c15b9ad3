"""Time-zone helpers: instants are UTC; zones only matter when presenting or matching."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import arrow

from portal.services.errors import DomainError


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA name (raises ZoneInfoNotFoundError)."""
    return ZoneInfo(name)


def to_local(instant: datetime, tz_name: str) -> datetime:
    """Convert an aware instant to wall-clock time in ``tz_name``."""
    return instant.astimezone(zone(tz_name))


def local_day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """Return the UTC instants where ``day`` starts and ends in ``tz_name`` (DST-safe)."""
    tz = zone(tz_name)
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def within_windows(start: datetime, end: datetime, tz_name: str, windows: list[dict]) -> bool:
    """Whether [start, end) falls inside one weekly window in the patient's zone.

    No windows means any time suits.
    """
    if not windows:
        return True
    local_start, local_end = to_local(start, tz_name), to_local(end, tz_name)
    for window in windows:
        if window["weekday"] != local_start.weekday():
            continue
        w_start, w_end = parse_hhmm(window["start"]), parse_hhmm(window["end"])
        same_day = local_end.date() == local_start.date() or local_end.time() == time.min
        end_time = local_end.time() if local_end.time() != time.min else time(23, 59, 59)
        if same_day and w_start <= local_start.time() and end_time <= w_end:
            return True
    return False


def shift_local_days(instant: datetime, tz_name: str, days: int) -> datetime:
    """The same wall-clock time ``days`` calendar days later in ``tz_name`` (as UTC).

    Across a DST change the wall clock stays and the gap in hours changes. A time the
    change skips is read forward (02:30 → 03:30 on a spring-forward day); a repeated one
    is its first occurrence (the earlier instant).
    """
    return arrow.get(instant).to(tz_name).shift(days=days).to("UTC").datetime


class NonexistentLocalTime(DomainError):
    """A wall-clock time that a DST change skips in that zone."""

    default_code = "nonexistent_local_time"


class AmbiguousLocalTime(DomainError):
    """A wall-clock time that happens twice in that zone (clocks went back)."""

    default_code = "ambiguous_local_time"


def local_to_utc(wall: datetime, tz_name: str, *, fold: int | None = None) -> datetime:
    """Read a naive wall-clock time in ``tz_name`` as an instant, or refuse it clearly.

    A time the zone skips (02:30 on a US spring-forward day) is refused, naming the gap
    and the time it would be read as; a repeated one (01:30 on a fall-back day) is
    refused unless ``fold`` picks the first (0) or second (1) occurrence.
    """
    tz = zone(tz_name)
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    shown = f"{wall:%H:%M} on {wall:%a %b %-d, %Y} in {tz_name}"
    exists = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
    if not exists:
        forward = first.astimezone(UTC).astimezone(tz)
        raise NonexistentLocalTime(
            f"{shown} does not exist: the clocks jump forward from {first.tzname()} to"
            f" {second.tzname()} over it. Did you mean"
            f" {forward:%H:%M} {forward.tzname()}?",
            details={"suggested": forward.isoformat()},
        )
    if fold is None:
        raise AmbiguousLocalTime(
            f"{shown} happens twice: first in {first.tzname()}, then in {second.tzname()}."
            " Give the UTC offset to say which.",
            details={
                "first": first.isoformat(),
                "second": second.isoformat(),
            },
        )
    return (first if fold == 0 else second).astimezone(UTC)


def refuse_skipped_wall_time(given: datetime, tz_name: str) -> None:
    """Refuse a time written as a wall-clock time the clinic's zone skips that day.

    "2027-03-14T02:30:00-05:00" for a New York clinic is a real instant (03:30 EDT),
    but it reads as 02:30 with the offset of the morning before the change: 02:30 never
    happens there that day, so the sender almost surely meant something else. A time
    in UTC, or in the clinic's own offset at that instant, is taken as it is.
    """
    offset = given.utcoffset()
    if offset is None or offset == timedelta(0):
        return
    if given.astimezone(zone(tz_name)).utcoffset() == offset:
        return
    try:
        local_to_utc(given.replace(tzinfo=None), tz_name, fold=0)
    except NonexistentLocalTime as exc:
        raise NonexistentLocalTime(
            f"{given.isoformat()}: {exc.message} Send the time with the offset in force"
            " then, or in UTC.",
            details=exc.details,
        ) from None
