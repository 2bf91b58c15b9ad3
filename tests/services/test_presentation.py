"""Times as people read them: kept texts stay right for every instant and zone.

``when`` keeps its texts (an LRU cache) under the instant in UTC: a wall-clock reading of
a repeated hour (fold 0 and 1) is two instants that Python compares and hashes as equal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil import tz

from portal.services import presentation
from portal.services.presentation import iso, shown_time, when


def test_one_instant_reads_the_same_however_it_was_written() -> None:
    instant = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)
    in_paris = instant.astimezone(ZoneInfo("Europe/Paris"))
    naive = instant.replace(tzinfo=None)  # read as UTC, as stored
    texts = {when(t, "America/Los_Angeles") for t in (instant, in_paris, naive)}
    assert texts == {"Tue, Nov 24 · 2:30 PM PST"}
    assert when(instant, ZoneInfo("America/New_York"), "time") == "5:30 PM EST"


def test_the_repeated_hour_of_a_dst_change_keeps_both_readings() -> None:
    # 2026-11-01 01:30 happens twice in New York: EDT, then EST an hour later.
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    second = first + timedelta(hours=1)
    assert when(first, "America/New_York", "time") == "1:30 AM EDT"
    assert when(second, "America/New_York", "time") == "1:30 AM EST"
    assert when(first, "America/New_York", "time") == "1:30 AM EDT"  # kept, still right


def test_the_clinic_time_is_shown_only_when_its_offset_differs() -> None:
    instant = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)
    same = shown_time(instant, "America/New_York", "America/Toronto")
    assert same.practice is None and same.abbrev == "EST"
    other = shown_time(instant, "America/Los_Angeles", "America/New_York")
    assert other.local.hour == 14 and other.practice is not None and other.practice.hour == 17


def test_machine_read_times_are_utc_iso() -> None:
    in_la = datetime(2026, 11, 24, 14, 30, 5, 123, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert iso(in_la) == "2026-11-24T22:30:05Z"
    assert iso(None) == ""


@pytest.mark.parametrize("first_fold", [0, 1])
def test_both_readings_of_a_repeated_wall_clock_time_are_their_own_instants(
    first_fold: int,
) -> None:
    presentation._when.cache_clear()  # whichever reading is formatted first
    edt = datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"))  # 05:30Z
    est = edt.replace(fold=1)  # 06:30Z: equal to ``edt`` as a dict key
    texts = {0: "5:30 AM", 1: "6:30 AM"}
    for fold in (first_fold, 1 - first_fold):
        moment = est if fold else edt
        assert when(moment, "UTC", "clock") == texts[fold]
        assert iso(moment) == f"2026-11-01T0{5 + fold}:30:00Z"


def test_a_zone_object_that_cannot_be_kept_is_still_shown() -> None:
    instant = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)
    assert when(instant, tz.gettz("America/Los_Angeles")) == "Tue, Nov 24 · 2:30 PM PST"
