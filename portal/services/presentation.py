"""How the portal shows times, money and slots to people — one place for every channel.

Pages (as Jinja filters), SMS, e-mail, voice and calendar text all format through
here, so a patient reads the same "Tue, Nov 24 · 2:30 PM PST" everywhere. Instants are
stored as aware UTC and converted only here; local-time presentation and arithmetic
use ``arrow``. Money is integer cents and never a float.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import arrow
from markupsafe import Markup

from portal.clock import now_utc
from portal.services.phones import display_phone

if TYPE_CHECKING:
    from portal.models import Slot

#: Named formats for ``when``; anything else is taken as a strftime pattern.
#: (Built from arrow tokens: strftime pads hours and days with zeros.)
FORMATS = {
    "full": "ddd, MMM D · h:mm A ZZZ",  # Tue, Nov 24 · 2:30 PM PST
    "no_zone": "ddd, MMM D · h:mm A",  # Tue, Nov 24 · 2:30 PM
    "time": "h:mm A ZZZ",  # 2:30 PM PST
    "clock": "h:mm A",  # 2:30 PM
    "date": "ddd, MMM D",  # Tue, Nov 24
    "long": "dddd, MMMM D, YYYY · h:mm A ZZZ",  # Tuesday, November 24, 2026 · 2:30 PM PST
    "short": "ddd MMM D h:mmA ZZZ",  # Tue Nov 24 2:30PM PST (SMS: GSM-7, few characters)
}


def local(instant: datetime, zone: str | tzinfo | None) -> arrow.Arrow:
    """Return ``instant`` on the wall clock of ``zone`` (UTC if none; naive read as UTC)."""
    if instant.tzinfo is None:  # a bug upstream: read it as the storage convention says
        instant = instant.replace(tzinfo=UTC)
    if isinstance(zone, str):
        with contextlib.suppress(ValueError, ZoneInfoNotFoundError):
            zone = _tz(zone)  # a kept ZoneInfo: arrow would read the zone file every time
    return arrow.get(instant).to(zone or "UTC")


def when(instant: datetime | None, zone: str | tzinfo | None, fmt: str = "full") -> str:
    """Show an instant in a zone: "Tue, Nov 24 · 2:30 PM PST" (see ``FORMATS``)."""
    if instant is None:
        return ""
    # Kept under the instant in UTC: two readings of a repeated wall-clock hour (fold 0
    # and 1) are different instants that Python compares and hashes as equal.
    utc = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    try:
        return _when(utc, zone, fmt)
    except TypeError:  # a tzinfo that cannot be hashed (dateutil's): not kept
        return _format(utc, zone, fmt)


@functools.lru_cache(maxsize=8192)
def _when(instant: datetime, zone: str | tzinfo | None, fmt: str) -> str:
    """``when``, kept: every page of a broadcast shows the same slot's times, and arrow's
    formatting is a good part of such a page's cost. The text depends only on the instant
    (UTC), the zone and the format, so a kept one never goes stale."""
    return _format(instant, zone, fmt)


def _format(instant: datetime, zone: str | tzinfo | None, fmt: str) -> str:
    shown = local(instant, zone)
    if fmt in FORMATS:
        return shown.format(FORMATS[fmt]).rstrip()
    return shown.datetime.strftime(fmt)


def zone_abbrev(instant: datetime | None, zone: str | tzinfo | None) -> str:
    """The zone's abbreviation at that instant ("PST" or "PDT")."""
    return "" if instant is None else local(instant, zone).format("ZZZ")


def relative(instant: datetime, now: datetime | None = None) -> str:
    """Say how far away an instant is: "in 25 minutes", "2 hours ago"."""
    return arrow.get(instant).humanize(arrow.get(now or now_utc()))


def iso(instant: datetime | None) -> str:
    """An ISO 8601 UTC timestamp ("2026-11-24T22:30:00Z") for machine-read attributes."""
    return when(instant, UTC, "%Y-%m-%dT%H:%M:%S") + "Z" if instant is not None else ""


def duration(minutes: int | None) -> str:
    """A duration in minutes as "1 h 5 min", "45 min" or "2 h"."""
    if minutes is None:
        return ""
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(int(minutes)), 60)
    if hours and rest:
        return f"{sign}{hours} h {rest} min"
    if hours:
        return f"{sign}{hours} h"
    return f"{sign}{rest} min"


def money(cents: int | None) -> str:
    """Integer cents as dollars: 123456 -> "$1,234.56", -500 -> "-$5.00"."""
    if cents is None:
        return "—"
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"money expects integer cents, got {type(cents).__name__}")
    sign = "-" if cents < 0 else ""
    dollars, remainder = divmod(abs(cents), 100)
    return f"{sign}${dollars:,}.{remainder:02d}"


@dataclass(frozen=True)
class ShownTime:
    """An instant as a patient reads it, and as the clinic does when the offsets differ."""

    local: datetime
    practice: datetime | None

    @property
    def abbrev(self) -> str:
        return self.local.tzname() or ""


def shown_time(instant: datetime, patient_zone: str, practice_zone: str) -> ShownTime:
    """The patient's local time, plus the clinic's when its offset differs."""
    mine, theirs = _on_clock(instant, patient_zone), _on_clock(instant, practice_zone)
    if mine.utcoffset() == theirs.utcoffset():
        return ShownTime(mine, None)
    return ShownTime(mine, theirs)


def _on_clock(instant: datetime, zone: str) -> datetime:
    """``instant`` on ``zone``'s clock as a plain datetime (``local`` without arrow's cost)."""
    try:
        tz = _tz(zone)
    except (ValueError, ZoneInfoNotFoundError):
        return local(instant, zone).datetime
    return (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).astimezone(tz)


@dataclass(frozen=True)
class SlotView:
    """A slot as a patient reads it, in their own zone (and the clinic's when it differs)."""

    id: int
    service: str
    practitioner: str
    location: str
    address: str
    phone: str  # "(212) 555-0100"
    phone_href: str  # "tel:+12125550100"
    date: str  # "Tue, Nov 24"
    clock: str  # "2:30 PM"
    zone: str  # "PST"
    when: str  # "Tue, Nov 24 · 2:30 PM PST"
    when_short: str  # "Tue Nov 24 2:30PM PST" (SMS)
    #: The clinic's time when its offset differs, else None: "5:30 PM EST" on the same
    #: local day, "Wed, Nov 25 · 1:00 AM CET" on another.
    practice_time: str | None
    practice_when: str | None  # the clinic's time in full, when it differs
    duration: str


def slot_view(slot: Slot, patient_zone: str) -> SlotView:
    """Turn a slot into the strings every channel shows a patient."""
    start, practice_zone = slot.start_at, slot.location.timezone
    shown = shown_time(start, patient_zone, practice_zone)
    practice_time = practice_when = None
    if shown.practice is not None:
        same_day = shown.practice.date() == shown.local.date()
        practice_time = when(start, practice_zone, "time" if same_day else "full")
        practice_when = when(start, practice_zone)
    return SlotView(
        id=slot.id,
        service=slot.service.name,
        practitioner=slot.practitioner.name,
        location=slot.location.name,
        address=slot.location.address or "",
        phone=display_phone(slot.location.phone),
        phone_href=f"tel:{slot.location.phone}" if slot.location.phone else "",
        date=when(start, patient_zone, "date"),
        clock=when(start, patient_zone, "clock"),
        zone=shown.abbrev,
        when=when(start, patient_zone),
        when_short=when(start, patient_zone, "short"),
        practice_time=practice_time,
        practice_when=practice_when,
        duration=duration(int((slot.end_at - start).total_seconds() // 60)),
    )


#: Zones offered first in "Not your time zone?" (the rest follow, alphabetically).
COMMON_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "America/Toronto",
    "America/Mexico_City",
    "Europe/London",
    "Europe/Paris",
    "Asia/Tokyo",
    "Australia/Sydney",
)
_PLACE_AREAS = (
    "Africa/",
    "America/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)


def zone_label(name: str, at: datetime) -> str:
    """A zone as people pick it: "Los Angeles · PST (UTC-08:00)" (its name at ``at``)."""
    shown = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(_tz(name))
    offset = shown.utcoffset()
    return _zone_label(name, shown.tzname() or "", int(offset.total_seconds()) if offset else 0)


@functools.cache
def _tz(name: str) -> ZoneInfo:
    """The zone, kept (``ZoneInfo``'s own cache holds only a few strongly)."""
    return ZoneInfo(name)


@functools.lru_cache(maxsize=4096)
def _zone_label(name: str, abbrev: str, offset_seconds: int) -> str:
    """The label of a zone while it has this abbreviation and offset (they change only at
    its transitions, so the label is cached on them: a page lists every zone)."""
    minutes = int(offset_seconds / 60)
    hours, mins = divmod(abs(minutes), 60)
    offset = f"UTC{'+' if minutes >= 0 else '-'}{hours:02d}:{mins:02d}"
    place = name.rsplit("/", 1)[-1].replace("_", " ")
    return f"{place} ({offset})" if abbrev[:1] in "+-" else f"{place} · {abbrev} ({offset})"


def zone_choices(at: datetime, *also: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The zones to offer: (common ones plus ``also``, every other place), as (name, label)."""
    first = tuple(dict.fromkeys([*also, *COMMON_ZONES]))
    return [(z, zone_label(z, at)) for z in first], list(_other_zones(_quarter(at), first))


def zone_options_html(at: datetime, *also: str) -> Markup:
    """``<option>``s for every zone ``zone_choices`` lists second (hundreds: built once a
    quarter hour, not per page)."""
    return _other_zones_html(_quarter(at), tuple(dict.fromkeys([*also, *COMMON_ZONES])))


def _quarter(at: datetime) -> datetime:
    """The quarter hour ``at`` falls in. Zones change abbreviation or offset only on
    quarter hours of UTC (their transitions are on whole local hours or half hours, and
    offsets are whole quarter hours), so a label read at its start holds all through it."""
    utc = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)


@functools.lru_cache(maxsize=64)
def _other_zones(quarter: datetime, first: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((z, zone_label(z, quarter)) for z in _place_zones() if z not in first)


@functools.lru_cache(maxsize=64)
def _other_zones_html(quarter: datetime, first: tuple[str, ...]) -> Markup:
    return Markup("").join(
        Markup('<option value="{}">{}</option>').format(name, label)
        for name, label in _other_zones(quarter, first)
    )


@functools.cache
def _place_zones() -> tuple[str, ...]:
    """Every zone named after a place, sorted (read from the zone database once)."""
    from portal.services.phones import known_zones

    return tuple(sorted(z for z in known_zones() if z.startswith(_PLACE_AREAS)))


def clock_label(hhmm: str, *, compact: bool = False) -> str:
    """A wall-clock time kept as "HH:MM" (hours, windows) as people read it: "9:30 AM".

    ``compact`` drops ":00" on the hour ("9 AM"), for tight spaces like a calendar.
    """
    hours, _, minutes = hhmm.partition(":")
    shown = arrow.Arrow(2000, 1, 1, int(hours), int(minutes))
    if compact and shown.minute == 0:
        return shown.format("h A")
    return shown.format(FORMATS["clock"])


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def weekly_window(window: dict[str, object]) -> str:
    """A weekly window ``{weekday, start, end}`` as "Monday 9:00 AM – 12:00 PM"."""
    day = WEEKDAYS[int(window["weekday"])]  # type: ignore[call-overload]
    return f"{day} {clock_label(str(window['start']))} – {clock_label(str(window['end']))}"


def window_elsewhere(
    window: dict[str, object], from_zone: str, to_zone: str, now: datetime | None = None
) -> str | None:
    """A weekly window in ``from_zone`` as ``to_zone`` reads it this week, if that differs.

    "Monday 9:00 AM – 12:00 PM" in New York reads "Monday 6:00 AM – 9:00 AM PST" in
    Los Angeles; None when both zones have the same offset then.
    """
    base = local(now or now_utc(), from_zone).floor("day")
    day = base.shift(days=(int(window["weekday"]) - base.weekday()) % 7)  # type: ignore[call-overload]
    hours, minutes = (int(x) for x in str(window["start"]).split(":"))
    start = day.replace(hour=hours, minute=minutes)
    hours, minutes = (int(x) for x in str(window["end"]).split(":"))
    end = day.replace(hour=hours, minute=minutes)
    there_start, there_end = start.to(to_zone), end.to(to_zone)
    if there_start.utcoffset() == start.utcoffset():
        return None
    weekday = WEEKDAYS[there_start.weekday()]
    return (
        f"{weekday} {there_start.format(FORMATS['clock'])} – "
        f"{there_end.format(FORMATS['clock'])} {there_start.format('ZZZ')}"
    )


_MONEY_INPUT = re.compile(r"\$?\s*([0-9]{1,7})(?:\.([0-9]{1,2}))?")


def parse_money(text: str) -> int:
    """Read an amount typed in dollars ("$1,234.5", "80") as integer cents; ValueError if not."""
    cleaned = (text or "").strip().replace(",", "")
    match = _MONEY_INPUT.fullmatch(cleaned)
    if match is None:
        raise ValueError("Enter an amount in dollars, e.g. 125 or 125.50.")
    dollars, cents = match.group(1), (match.group(2) or "0").ljust(2, "0")
    return int(dollars) * 100 + int(cents)
