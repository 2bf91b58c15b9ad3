"""Jinja globals and filters shared by every template.

Times are stored as timezone-aware UTC and converted only here, when presented.
Money is integer cents and is never turned into a float.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from enum import Enum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from portal.services.matching import describe_exclusions
from portal.services.phones import display_phone

if TYPE_CHECKING:
    from flask import Flask

#: Named formats for the ``local_time`` filter; any other ``fmt`` is a strftime pattern.
#: Built by hand because strftime pads hours and days with zeros ("02:30 PM, Nov 04").
TIME_FORMATS = ("full", "no_zone", "time", "date", "long")

#: Labels that ``status.replace("_", " ").capitalize()`` would get wrong or make awkward.
STATUS_LABELS = {
    "no_show": "No-show",
    "checked_in": "Checked in",
    "in_progress": "In progress",
    "frequent_cancellations": "Frequent cancellations",
    "invalid_phone": "Invalid phone",
    "sms": "SMS",
}


def has_endpoint_in(app: Flask, name: str) -> bool:
    """Return whether ``app`` has a view registered under the endpoint ``name``."""
    return name in app.view_functions


def money(cents: int | None) -> str:
    """Format integer cents as dollars: 123456 -> "$1,234.56", -500 -> "-$5.00"."""
    if cents is None:
        return "—"
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"money expects integer cents, got {type(cents).__name__}")
    sign = "-" if cents < 0 else ""
    dollars, remainder = divmod(abs(cents), 100)
    return f"{sign}${dollars:,}.{remainder:02d}"


def _zone(tz: str | tzinfo | None) -> tzinfo:
    if tz is None:
        return UTC
    if isinstance(tz, tzinfo):
        return tz
    return ZoneInfo(tz)


def _as_utc(dt: datetime) -> datetime:
    # A naive value here is a bug upstream; read it as UTC (the storage convention)
    # rather than as server-local time.
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


def _clock(local: datetime) -> str:
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def local_time(dt: datetime | None, tz: str | tzinfo | None, fmt: str = "full") -> str:
    """Show a UTC instant in a zone: "Tue, Nov 24 · 2:30 PM PST".

    ``fmt`` is one of ``full`` (the default), ``no_zone`` ("Tue, Nov 24 · 2:30 PM"),
    ``time`` ("2:30 PM PST"), ``date`` ("Tue, Nov 24"), ``long``
    ("Tuesday, November 24, 2026 · 2:30 PM PST"), or else a strftime pattern
    applied to the local time.
    """
    if dt is None:
        return ""
    local = _as_utc(dt).astimezone(_zone(tz))
    abbrev = local.tzname() or ""
    day = f"{local:%a}, {local:%b} {local.day}"
    if fmt == "full":
        return f"{day} · {_clock(local)} {abbrev}".rstrip()
    if fmt == "no_zone":
        return f"{day} · {_clock(local)}"
    if fmt == "time":
        return f"{_clock(local)} {abbrev}".rstrip()
    if fmt == "date":
        return day
    if fmt == "long":
        return (
            f"{local:%A}, {local:%B} {local.day}, {local.year} · {_clock(local)} {abbrev}".rstrip()
        )
    return local.strftime(fmt)


def tz_abbrev(dt: datetime | None, tz: str | tzinfo | None) -> str:
    """Return the zone's abbreviation at that instant ("PST" or "PDT")."""
    if dt is None:
        return ""
    return _as_utc(dt).astimezone(_zone(tz)).tzname() or ""


def iso(dt: datetime | None) -> str:
    """Return an ISO 8601 UTC timestamp ("2026-11-24T22:30:00Z") for machine-read attributes."""
    if dt is None:
        return ""
    utc = _as_utc(dt).astimezone(UTC)
    return utc.isoformat(timespec="seconds").replace("+00:00", "Z")


def humanize_minutes(minutes: int | None) -> str:
    """Return a duration in minutes as "1 h 5 min", "45 min" or "2 h"."""
    if minutes is None:
        return ""
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(int(minutes)), 60)
    if hours and rest:
        return f"{sign}{hours} h {rest} min"
    if hours:
        return f"{sign}{hours} h"
    return f"{sign}{rest} min"


def status_key(status: str | Enum | None) -> str:
    """Return the plain value of a status enum or string ("no_show")."""
    if status is None:
        return ""
    if isinstance(status, Enum):
        return str(status.value)
    return str(status)


def status_label(status: str | Enum | None) -> str:
    """Return a human label for a status value: ``no_show`` -> "No-show"."""
    key = status_key(status)
    if key in STATUS_LABELS:
        return STATUS_LABELS[key]
    return key.replace("_", " ").capitalize()


def init_app(app: Flask) -> None:
    """Register the template globals and filters on ``app``."""

    def has_endpoint(name: str) -> bool:
        return has_endpoint_in(app, name)

    app.jinja_env.globals.update(
        has_endpoint=has_endpoint,
        status_label=status_label,
        status_key=status_key,
    )
    app.jinja_env.filters.update(
        money=money,
        local_time=local_time,
        tz_abbrev=tz_abbrev,
        iso=iso,
        humanize_minutes=humanize_minutes,
        phone=display_phone,
        nobody_left=describe_exclusions,
    )
