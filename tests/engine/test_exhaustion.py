"""'Nobody left to ask' says why: each waiting patient left out is counted by reason."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import AuditEvent, Closure, PatientFlag, Slot
from portal.models.enums import FlagKind, OfferStatus, SlotStatus
from portal.services.filling import advance
from portal.services.matching import Exclusion, describe_exclusions, match_slot
from portal.services.timezones import zone
from tests import factories as f
from tests.staff.conftest import signed_in, staff  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("app")

NY = "America/New_York"


def _slot_in(hours: float) -> Slot:
    start = (now_utc() + timedelta(hours=hours)).replace(second=0, microsecond=0)
    return f.slot(start_at=start, practitioner=f.practitioner(location=f.location(timezone=NY)))


def _one_of_each_reason(slot: Slot) -> dict[str, object]:
    """Waitlist one patient per reason (short notice: the slot is 90 minutes away)."""
    made: dict[str, object] = {}

    offered = f.waitlist_entry(slot=slot, short_notice_ok=True)
    f.offer(slot=slot, entry=offered, status=OfferStatus.EXPIRED)
    made["already_offered"] = offered

    flagged = f.patient()
    db.session.add(PatientFlag(patient_id=flagged.id, kind=FlagKind.UNREACHABLE, notes="x"))
    f.waitlist_entry(patient=flagged, slot=slot, short_notice_ok=True)
    f.waitlist_entry(patient=f.patient(phone_e164=None, email=None), slot=slot)

    busy = f.patient()
    f.waitlist_entry(patient=busy, slot=slot, short_notice_ok=True)
    other = f.slot(start_at=slot.start_at + timedelta(minutes=15), status=SlotStatus.BOOKED)
    f.appointment(slot=other, patient=busy)

    f.waitlist_entry(slot=slot, short_notice_ok=False)
    f.waitlist_entry(slot=slot, short_notice_ok=True, latest=date(2000, 1, 1))
    weekday = (slot.start_at.astimezone(zone(NY)).weekday() + 3) % 7
    f.waitlist_entry(
        slot=slot,
        short_notice_ok=True,
        windows=[{"weekday": weekday, "start": "09:00", "end": "10:00"}],
    )

    capped = f.patient()
    f.waitlist_entry(patient=capped, slot=slot, short_notice_ok=True)
    for days in (3, 4, 5):  # three offers made today, for slots days away
        elsewhere = _slot_in(24 * days)
        f.offer(
            slot=elsewhere,
            entry=f.waitlist_entry(patient=capped, slot=elsewhere),
            status=OfferStatus.DECLINED,
        )
    return made


def test_every_left_out_patient_is_counted_by_reason() -> None:
    slot = _slot_in(1.5)
    _one_of_each_reason(slot)
    fits = f.waitlist_entry(slot=slot, short_notice_ok=True)

    match = match_slot(slot, now_utc())

    assert [c.entry.id for c in match.candidates] == [fits.id]
    assert dict(match.excluded) == {
        Exclusion.ALREADY_OFFERED: 1,
        Exclusion.UNREACHABLE: 2,
        Exclusion.BUSY: 1,
        Exclusion.SHORT_NOTICE: 1,
        Exclusion.OUTSIDE_DATES: 1,
        Exclusion.OUTSIDE_WINDOW: 1,
        Exclusion.DAILY_CAP: 1,
    }


def test_exhausting_a_slot_keeps_the_counts_and_audits_them() -> None:
    slot = _slot_in(1.5)
    _one_of_each_reason(slot)

    outcome = advance(slot.id)
    db.session.commit()

    assert outcome.reason == "no matching waitlist entries"
    db.session.refresh(slot)
    assert slot.fill_exhausted_at is not None
    expected = {
        "already_offered": 1,
        "unreachable": 2,
        "busy": 1,
        "short_notice": 1,
        "outside_dates": 1,
        "outside_window": 1,
        "daily_cap": 1,
    }
    assert slot.fill_exhausted_reasons == expected
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "slot.fill_exhausted")
    ).one()
    assert event.after["excluded"] == expected


def test_a_closure_counts_everyone_waiting() -> None:
    slot = _slot_in(48)
    for _ in range(3):
        f.waitlist_entry(slot=slot)
    db.session.add(Closure(location_id=None, start_at=slot.start_at, end_at=slot.end_at))

    advance(slot.id)

    assert slot.fill_exhausted_reasons == {"closure": 3}


def test_past_the_cutoff_counts_everyone_waiting() -> None:
    slot = _slot_in(0.1)  # starts in six minutes: past the offer cutoff
    f.waitlist_entry(slot=slot, short_notice_ok=True)

    outcome = advance(slot.id)

    assert outcome.reason == "past the offer cutoff"
    assert slot.fill_exhausted_reasons == {"past_cutoff": 1}


def test_an_empty_waitlist_is_said_plainly() -> None:
    slot = _slot_in(48)
    advance(slot.id)
    assert slot.fill_exhausted_reasons == {}
    assert describe_exclusions(slot.fill_exhausted_reasons) == "nobody is on the waitlist for it"


@pytest.mark.parametrize(
    ("counts", "text"),
    [
        ({"busy": 2, "daily_cap": 4}, "4 over the daily cap, 2 busy"),
        ({"outside_window": 1, "already_offered": 1}, "1 already offered, 1 outside their hours"),
        ({"closure": 3}, "3 waiting, but the slot is inside a closure"),
        (None, "nobody is on the waitlist for it"),
        ({"a_reason_from_the_future": 2, "busy": 1}, "1 busy"),
    ],
)
def test_describe_exclusions(counts: dict[str, int] | None, text: str) -> None:
    assert describe_exclusions(counts) == text


def test_staff_see_why_nobody_is_left(signed_in: FlaskClient) -> None:  # noqa: F811
    day = (now_utc() + timedelta(days=2)).astimezone(zone(NY)).date()
    location = f.location(timezone=NY)
    slot = f.slot(
        start_at=datetime.combine(day, time(11), tzinfo=zone(NY)),
        practitioner=f.practitioner(location=location),
        fill_exhausted_at=now_utc(),
        fill_exhausted_reasons={"busy": 2, "daily_cap": 4},
        current_wave=1,
    )
    expected = "Nobody left to ask: 4 over the daily cap, 2 busy"

    day_view = signed_in.get(f"/staff/day?location={location.id}&date={day.isoformat()}")
    assert expected in day_view.text
    assert expected in signed_in.get(f"/staff/slots/{slot.id}").text
