"""When reminders go: the cadence on the patient's calendar, quiet hours, DST, late bookings.

Real zones across the 2026 and 2027 changes. Quiet hours are the default 21:00-08:00
on the patient's clock, and a reminder moved out of them goes 15 minutes before they
begin (20:45).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.models.enums import ReminderStatus
from portal.services.notify.policy import quiet_until
from portal.services.reminders import Plan, plan_times
from portal.services.settings import set_setting
from tests.reminders.conftest import at

NY, LA, PHX, HNL, LON, LHI = (
    "America/New_York",
    "America/Los_Angeles",
    "America/Phoenix",
    "Pacific/Honolulu",
    "Europe/London",
    "Australia/Lord_Howe",
)
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def plan(tz: str, start: datetime, now: datetime = LONG_AGO, **kw: object) -> dict[int, Plan]:
    kw.setdefault("confirmation_sent", True)
    plans = plan_times(start, [72, 24], tz, None, now, **kw)  # type: ignore[arg-type]
    return {p.lead_hours: p for p in plans}


def local(instant: datetime, tz: str) -> str:
    shown = instant.astimezone(at(tz, 2000, 1, 1).tzinfo)
    return f"{shown:%a %b %d %H:%M} {shown.tzname()}"


# (zone, the visit on the patient's clock, 3-day reminder, 1-day reminder, hours 3d/1d ahead)
CASES = [
    pytest.param(
        NY,
        at(NY, 2026, 3, 10, 10, 0),
        "Sat Mar 07 10:00 EST",
        "Mon Mar 09 10:00 EDT",
        (71, 24),
        id="new-york-3-day-moment-crosses-spring-forward",
    ),
    pytest.param(
        NY,
        at(NY, 2026, 11, 1, 1, 30),
        "Wed Oct 28 20:45 EDT",
        "Fri Oct 30 20:45 EDT",
        None,
        id="new-york-01:30-first-on-fall-back-day",
    ),
    pytest.param(
        NY,
        at(NY, 2026, 11, 1, 1, 30, fold=1),
        "Wed Oct 28 20:45 EDT",
        "Fri Oct 30 20:45 EDT",
        None,
        id="new-york-01:30-repeated-on-fall-back-day",
    ),
    pytest.param(
        NY,
        at(NY, 2027, 3, 15, 2, 30),
        "Thu Mar 11 20:45 EST",
        "Sat Mar 13 20:45 EST",
        None,
        id="new-york-1-day-moment-is-the-skipped-02:30",
    ),
    pytest.param(
        LA,
        at(LA, 2027, 11, 8, 9, 0),
        "Fri Nov 05 09:00 PDT",
        "Sun Nov 07 09:00 PST",
        (73, 24),
        id="los-angeles-3-day-moment-across-fall-back",
    ),
    pytest.param(
        LA,
        at(LA, 2026, 3, 9, 7, 0),
        "Thu Mar 05 20:45 PST",
        "Sat Mar 07 20:45 PST",
        None,
        id="los-angeles-07:00-visit-reminders-move-to-the-evening-before",
    ),
    pytest.param(
        PHX,
        at(PHX, 2027, 3, 14, 8, 30),
        "Thu Mar 11 08:30 MST",
        "Sat Mar 13 08:30 MST",
        (72, 24),
        id="phoenix-no-dst-on-a-us-change-day",
    ),
    pytest.param(
        HNL,
        at(HNL, 2026, 11, 4, 7, 0),
        "Sat Oct 31 20:45 HST",
        "Mon Nov 02 20:45 HST",
        None,
        id="honolulu-early-visit-quiet-hours",
    ),
    pytest.param(
        LON,
        at(LON, 2027, 3, 30, 10, 0),
        "Sat Mar 27 10:00 GMT",
        "Mon Mar 29 10:00 BST",
        (71, 24),
        id="london-across-march-change",
    ),
    pytest.param(
        LON,
        at(LON, 2026, 10, 26, 22, 0),
        "Fri Oct 23 20:45 BST",
        "Sun Oct 25 20:45 GMT",
        None,
        id="london-evening-visit-after-october-change",
    ),
    pytest.param(
        LHI,
        at(LHI, 2026, 10, 5, 9, 0),
        "Fri Oct 02 09:00 +1030",
        "Sun Oct 04 09:00 +11",
        (71.5, 24),
        id="lord-howe-half-hour-spring-forward",
    ),
    pytest.param(
        LHI,
        at(LHI, 2026, 10, 5, 2, 15),
        "Thu Oct 01 20:45 +1030",
        "Sat Oct 03 20:45 +1030",
        None,
        id="lord-howe-1-day-moment-in-the-skipped-half-hour",
    ),
    pytest.param(
        LHI,
        at(LHI, 2027, 4, 5, 10, 0),
        "Fri Apr 02 10:00 +11",
        "Sun Apr 04 10:00 +1030",
        (72.5, 24),
        id="lord-howe-half-hour-fall-back-2027",
    ),
]


@pytest.mark.parametrize(("tz", "start", "three_day", "one_day", "gaps"), CASES)
def test_reminders_keep_the_patients_wall_clock_and_leave_quiet_hours(
    app: object,
    tz: str,
    start: datetime,
    three_day: str,
    one_day: str,
    gaps: tuple[float, float] | None,
) -> None:
    plans = plan(tz, start)

    assert local(plans[72].due_at, tz) == three_day
    assert local(plans[24].due_at, tz) == one_day
    assert all(p.status == ReminderStatus.SCHEDULED for p in plans.values())
    assert all(p.due_at < start and p.due_at <= p.nominal_at for p in plans.values())
    assert all(quiet_until(p.due_at, tz) is None for p in plans.values())
    if gaps is not None:
        hours = tuple((start - plans[lead].due_at) / timedelta(hours=1) for lead in (72, 24))
        assert hours == gaps


def test_a_moment_in_quiet_hours_says_it_was_moved(app: object) -> None:
    plans = plan(HNL, at(HNL, 2026, 11, 4, 7, 0))
    assert plans[24].note == "moved out of the patient's quiet hours"
    assert plans[24].nominal_at == at(HNL, 2026, 11, 3, 7, 0)


def test_a_stricter_state_override_moves_the_evening_send_earlier(app: object) -> None:
    set_setting("quiet_hours_overrides", {"FL": {"start": "20:00", "end": "08:00"}})
    start = at(NY, 2026, 6, 10, 7, 0)

    florida = {
        p.lead_hours: p for p in plan_times(start, [24], NY, "FL", LONG_AGO, confirmation_sent=True)
    }
    new_york = {
        p.lead_hours: p for p in plan_times(start, [24], NY, "NY", LONG_AGO, confirmation_sent=True)
    }

    assert local(florida[24].due_at, NY) == "Mon Jun 08 19:45 EDT"
    assert local(new_york[24].due_at, NY) == "Mon Jun 08 20:45 EDT"


# --- booked (or replanned) inside a lead time ----------------------------------------

VISIT = at(NY, 2026, 6, 12, 10, 0)  # Fri 10:00 EDT


@pytest.mark.parametrize(
    ("now", "confirmation_sent", "expected"),
    [
        pytest.param(
            at(NY, 2026, 6, 10, 14, 0),
            True,
            {72: ("skipped", None), 24: ("scheduled", "Thu Jun 11 10:00 EDT")},
            id="booked-2-days-ahead-3-day-skipped-1-day-kept",
        ),
        pytest.param(
            at(NY, 2026, 6, 11, 14, 0),
            True,
            {72: ("skipped", None), 24: ("skipped", None)},
            id="booked-20-hours-ahead-the-confirmation-is-the-reminder",
        ),
        pytest.param(
            at(NY, 2026, 6, 11, 14, 0),
            False,
            {72: ("skipped", None), 24: ("scheduled", "Thu Jun 11 14:00 EDT")},
            id="replanned-20-hours-ahead-one-catch-up-at-once",
        ),
        pytest.param(
            at(NY, 2026, 6, 11, 23, 0),
            False,
            {72: ("skipped", None), 24: ("scheduled", "Fri Jun 12 08:00 EDT")},
            id="replanned-at-night-catch-up-when-quiet-hours-end",
        ),
        pytest.param(
            at(NY, 2026, 6, 12, 6, 30),
            False,
            {72: ("skipped", None), 24: ("scheduled", "Fri Jun 12 08:00 EDT")},
            id="replanned-at-night-catch-up-exactly-2-hours-ahead-still-goes",
        ),
        pytest.param(
            at(NY, 2026, 6, 12, 8, 1),
            False,
            {72: ("skipped", None), 24: ("skipped", None)},
            id="replanned-under-2-hours-ahead-pointless",
        ),
        pytest.param(
            at(NY, 2026, 6, 9, 10, 0),
            False,
            {72: ("skipped", None), 24: ("scheduled", "Thu Jun 11 10:00 EDT")},
            id="replanned-after-the-3-day-moment-superseded-by-1-day",
        ),
    ],
)
def test_inside_a_lead_time(
    app: object, now: datetime, confirmation_sent: bool, expected: dict[int, tuple[str, str | None]]
) -> None:
    plans = plan(NY, VISIT, now, confirmation_sent=confirmation_sent)
    got = {
        lead: (
            p.status.value,
            local(p.due_at, NY) if p.status == ReminderStatus.SCHEDULED else None,
        )
        for lead, p in plans.items()
    }
    assert got == expected
    for p in plans.values():
        if p.status == ReminderStatus.SCHEDULED:
            assert now <= p.due_at < VISIT
        else:
            assert p.note


def test_a_quiet_hours_move_that_lands_in_the_past_is_never_scheduled_there(app: object) -> None:
    visit = at(NY, 2026, 6, 12, 7, 0)  # Fri 07:00: the 1-day moment, Thu 07:00, is quiet
    now = at(NY, 2026, 6, 10, 22, 0)  # Wed 22:00: its evening-before slot (Wed 20:45) is past

    booked = plan(NY, visit, now, confirmation_sent=True)
    replanned = plan(NY, visit, now, confirmation_sent=False)

    assert booked[24].status == ReminderStatus.SKIPPED  # the confirmation just told them
    assert replanned[24].status == ReminderStatus.SCHEDULED
    assert local(replanned[24].due_at, NY) == "Thu Jun 11 08:00 EDT"  # not the past evening


ZONES = st.sampled_from([NY, LA, PHX, HNL, LON, LHI])
INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    tz=ZONES, start=INSTANTS, ahead=st.integers(min_value=1, max_value=24 * 8), sent=st.booleans()
)
def test_never_in_the_past_never_after_the_visit_never_in_quiet_hours(
    app: object, tz: str, start: datetime, ahead: int, sent: bool
) -> None:
    now = start - timedelta(hours=ahead)
    for p in plan_times(start, [72, 24], tz, None, now, confirmation_sent=sent):
        if p.status != ReminderStatus.SCHEDULED:
            continue
        assert now <= p.due_at < start
        assert quiet_until(p.due_at, tz) is None
        assert start - p.due_at >= timedelta(minutes=120) or p.due_at <= p.nominal_at
