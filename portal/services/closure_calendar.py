"""The closures calendar: a month of one location's local days, with what is closed when."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Closure, Location
from portal.services.presentation import clock_label, when
from portal.services.timezones import local_day_bounds, to_local

#: Weeks start on Sunday, as the clinic's paper calendars do.
FIRST_WEEKDAY = calendar.SUNDAY


@dataclass(frozen=True)
class ClosedTime:
    """A closure as one local day shows it: "Closed all day" or "Closed 2:00 PM – 6:00 PM"."""

    closure: Closure
    all_day: bool
    label: str


@dataclass
class CalendarDay:
    day: date
    in_month: bool
    is_today: bool
    opening: str | None = None  # "9:00 AM – 6:00 PM" from the location's opening hours
    closed: list[ClosedTime] = field(default_factory=list)


@dataclass
class MonthView:
    location: Location
    year: int
    month: int
    weeks: list[list[CalendarDay]]

    @property
    def title(self) -> str:
        return f"{calendar.month_name[self.month]} {self.year}"

    @property
    def previous(self) -> tuple[int, int]:
        return (self.year - 1, 12) if self.month == 1 else (self.year, self.month - 1)

    @property
    def next(self) -> tuple[int, int]:
        return (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)

    @property
    def weekday_names(self) -> list[str]:
        return [calendar.day_abbr[(FIRST_WEEKDAY + i) % 7] for i in range(7)]


def _closures_between(location: Location, start: datetime, end: datetime) -> list[Closure]:
    return list(
        db.session.scalars(
            sa.select(Closure)
            .where(
                sa.or_(Closure.location_id.is_(None), Closure.location_id == location.id),
                Closure.start_at < end,
                Closure.end_at > start,
            )
            .order_by(Closure.start_at, Closure.id)
        )
    )


def _opening(location: Location, day: date) -> str | None:
    hours = location.opening_hours or []
    windows = [w for w in hours if w.get("weekday") == day.weekday()]
    if not windows:
        return "Not open" if hours else None
    return ", ".join(
        f"{clock_label(w['start'], compact=True)}–{clock_label(w['end'], compact=True)}"
        for w in windows
    )


def closed_time(closure: Closure, day: date, tz: str) -> ClosedTime | None:
    """How ``closure`` affects the local ``day`` in ``tz``, or None if it does not."""
    day_start, day_end = local_day_bounds(day, tz)
    if closure.end_at <= day_start or closure.start_at >= day_end:
        return None
    if closure.start_at <= day_start and closure.end_at >= day_end:
        return ClosedTime(closure, True, "Closed all day")
    start = max(closure.start_at, day_start)
    end = min(closure.end_at, day_end)
    until = "midnight" if end == day_end else clock_label(when(end, tz, "%H:%M"), compact=True)
    since = clock_label(when(start, tz, "%H:%M"), compact=True)
    return ClosedTime(closure, False, f"Closed {since}–{until}")


def month_view(location: Location, year: int, month: int, now: datetime | None = None) -> MonthView:
    """Return the month's weeks for ``location`` in its own zone, closures on each day."""
    tz = location.timezone
    today = to_local(now or now_utc(), tz).date()
    weeks = calendar.Calendar(FIRST_WEEKDAY).monthdatescalendar(year, month)
    start = local_day_bounds(weeks[0][0], tz)[0]
    end = local_day_bounds(weeks[-1][-1], tz)[1]
    closures = _closures_between(location, start, end)
    grid = []
    for week in weeks:
        row = []
        for day in week:
            cell = CalendarDay(day, day.month == month, day == today, _opening(location, day))
            cell.closed = [c for c in (closed_time(x, day, tz) for x in closures) if c]
            row.append(cell)
        grid.append(row)
    return MonthView(location, year, month, grid)
