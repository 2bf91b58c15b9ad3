"""Time-zone helpers: instants are UTC; zones only matter when presenting or matching."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


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
