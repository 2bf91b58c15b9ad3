"""The kept time texts: keyed on the instant, never on a wall-clock reading that repeats."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from portal.services import presentation
from portal.services.presentation import iso, when

NY = ZoneInfo("America/New_York")


def test_the_two_readings_of_an_ambiguous_wall_time_are_shown_as_different_instants() -> None:
    presentation._when.cache_clear()
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY)  # EDT: 05:30 UTC
    second = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY)  # EST: 06:30 UTC
    assert first.timestamp() != second.timestamp()  # two different instants...
    assert first == second and hash(first) == hash(second)  # ...equal as cache keys

    assert iso(first) == "2026-11-01T05:30:00Z"
    assert when(first, "UTC", "clock") == "5:30 AM"
    assert iso(second) == "2026-11-01T06:30:00Z"
    assert when(second, "UTC", "clock") == "6:30 AM"


def test_uncached_order_does_not_matter() -> None:
    """The same assertions, second instant first: whichever is formatted first wins."""
    presentation._when.cache_clear()
    second = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY)
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY)
    assert when(second, "America/Chicago", "full") == "Sun, Nov 1 · 1:30 AM CDT"  # 06:30 UTC
    assert when(first, "America/Chicago", "full") == "Sun, Nov 1 · 12:30 AM CDT"  # 05:30 UTC


def test_when_still_takes_any_tzinfo_the_signature_allows() -> None:
    """``zone: str | tzinfo | None``: a dateutil zone (what arrow's own parser hands back
    for some inputs) is a tzinfo, but not hashable, so the lru_cache refuses it."""
    from datetime import UTC

    from dateutil import tz

    instant = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)
    assert when(instant, tz.gettz("America/Los_Angeles")) == "Tue, Nov 24 · 2:30 PM PST"
