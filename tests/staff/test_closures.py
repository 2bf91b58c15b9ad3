"""Closures: created per location or everywhere, offers inside withdrawn and patients told,
closed time never offered, bookings inside moved or cancelled, the calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Appointment, Charge, Closure, Notification, Offer, Slot
from portal.models.enums import AppointmentStatus, Channel, OfferStatus, Purpose, SlotStatus
from portal.services import closures
from portal.services.alternatives import find_alternatives
from portal.services.audit import SYSTEM
from portal.services.closure_calendar import month_view
from portal.services.filling import advance
from portal.services.matching import Exclusion
from portal.services.notify.messages import render_message
from tests import factories as f
from tests.staff.conftest import form_token

NY = "America/New_York"
LA = "America/Los_Angeles"


def _tomorrow_local(tz: str) -> date:
    return (now_utc().astimezone(ZoneInfo(tz)) + timedelta(days=1)).date()


def _at(day: date, hour: int, tz: str) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def _offered_slot(tz: str = NY, hour: int = 10, patients: int = 2) -> tuple[Slot, list[Offer]]:
    location = f.location(timezone=tz)
    slot = f.slot(
        practitioner=f.practitioner(location=location), start_at=_at(_tomorrow_local(tz), hour, tz)
    )
    for _ in range(patients):
        f.waitlist_entry(slot=slot)
    offers = advance(slot.id).offers
    db.session.commit()
    return slot, offers


def test_closures_page_needs_a_signed_in_user(client: FlaskClient) -> None:
    assert client.get("/staff/closures").status_code == 302


def test_a_closure_withdraws_offers_inside_and_tells_the_patients(signed_in: FlaskClient) -> None:
    slot, offers = _offered_slot()
    assert len(offers) == 2
    day = _tomorrow_local(NY)
    token = form_token(signed_in, "/staff/closures")
    response = signed_in.post(
        "/staff/closures",
        data={
            "csrf_token": token,
            "location": slot.location_id,
            "kind": "days",
            "first_day": day.isoformat(),
            "reason": "Burst pipe",
        },
        follow_redirects=True,
    )
    assert "2 pending offers were withdrawn and the patients told" in response.text
    db.session.expire_all()
    assert {o.status for o in db.session.scalars(sa.select(Offer))} == {OfferStatus.WITHDRAWN}
    assert {o.withdrawn_reason for o in db.session.scalars(sa.select(Offer))} == {"closure"}
    told = db.session.scalars(
        sa.select(Notification).where(Notification.purpose == Purpose.SLOT_FILLED)
    ).all()
    assert len(told) == 2 and all(n.context == {"closure": True} for n in told)
    text = render_message(told[0], Channel.SMS).body
    assert (
        "no longer available: the clinic will be closed then" in text and "just taken" not in text
    )
    closure = db.session.scalar(sa.select(Closure))
    assert closure.start_at == _at(day, 0, NY) and closure.end_at == _at(
        day + timedelta(days=1), 0, NY
    )


def test_closed_time_is_never_offered_and_alternatives_skip_it(app: Flask) -> None:
    location = f.location(timezone=NY)
    doctor = f.practitioner(location=location)
    service = f.service()
    day = _tomorrow_local(NY)
    inside = f.slot(practitioner=doctor, service=service, start_at=_at(day, 14, NY))
    outside = f.slot(practitioner=doctor, service=service, start_at=_at(day, 9, NY))
    patient = f.patient()
    f.waitlist_entry(patient=patient, slot=inside)
    closures.create_closure(
        location=location,
        first_day=day,
        start_time=time(13),
        end_time=time(18),
        reason="Training",
        actor=SYSTEM,
    )
    outcome = advance(inside.id)
    assert outcome.reason == "inside a closure" and not outcome.offers
    assert db.session.get(Slot, inside.id).fill_exhausted_reasons == {Exclusion.CLOSURE.value: 1}
    alternatives = find_alternatives(patient, outside)
    assert inside.id not in {a.slot.id for a in alternatives}


def test_all_locations_close_each_in_its_own_zone(app: Flask) -> None:
    ny, la = f.location(timezone=NY), f.location(timezone=LA)
    day = _tomorrow_local(NY) + timedelta(days=2)
    result = closures.create_closure(location=None, first_day=day, reason="Holiday", actor=SYSTEM)
    spans = {c.location_id: (c.start_at, c.end_at) for c in result.closures}
    assert spans[ny.id][0] == _at(day, 0, NY)
    assert spans[la.id][0] == _at(day, 0, LA)
    assert spans[la.id][0] - spans[ny.id][0] == timedelta(hours=3)


def test_reduced_hours_repeat_on_each_day_of_the_range(app: Flask) -> None:
    location = f.location(timezone=NY)
    first = _tomorrow_local(NY)
    result = closures.create_closure(
        location=location,
        first_day=first,
        last_day=first + timedelta(days=2),
        start_time=time(15),
        end_time=time(18),
        actor=SYSTEM,
    )
    assert [c.start_at for c in result.closures] == [
        _at(first + timedelta(days=n), 15, NY) for n in range(3)
    ]


def test_bookings_inside_are_listed_and_can_be_cancelled_without_a_fee(
    signed_in: FlaskClient,
) -> None:
    location = f.location(timezone=NY)
    day = _tomorrow_local(NY)
    slot = f.slot(practitioner=f.practitioner(location=location), start_at=_at(day, 11, NY))
    appointment = f.appointment(slot=slot, patient=f.patient(name="Bea Booked"))
    db.session.commit()
    token = form_token(signed_in, "/staff/closures")
    response = signed_in.post(
        "/staff/closures",
        data={
            "csrf_token": token,
            "location": location.id,
            "kind": "days",
            "first_day": day.isoformat(),
        },
    )
    assert response.status_code == 303 and "/staff/closures/" in response.headers["Location"]
    page = signed_in.get(response.headers["Location"]).text
    assert "1 booking is inside it: move or cancel them below." in page and "Bea Booked" in page
    closure = db.session.scalar(sa.select(Closure))
    signed_in.post(
        f"/staff/closures/{closure.id}/slots/{slot.id}/cancel",
        data={"csrf_token": token, "reason": "the clinic is closed that day"},
    )
    db.session.expire_all()
    cancelled = db.session.get(Appointment, appointment.id)
    assert cancelled.status == AppointmentStatus.CANCELLED and not cancelled.cancellation_fee_cents
    notice = db.session.scalar(
        sa.select(Notification).where(Notification.purpose == Purpose.CANCELLATION)
    )
    assert notice.context == {"reason": "the clinic is closed that day"}
    reopened = db.session.get(Slot, slot.id)
    assert reopened.status == SlotStatus.OPEN  # open, but inside the closure: never offered


def test_a_booking_inside_can_be_moved_to_another_time(signed_in: FlaskClient) -> None:
    location = f.location(timezone=NY)
    doctor, service = f.practitioner(location=location), f.service()
    day = _tomorrow_local(NY)
    slot = f.slot(practitioner=doctor, service=service, start_at=_at(day, 11, NY))
    later = f.slot(
        practitioner=doctor, service=service, start_at=_at(day + timedelta(days=1), 11, NY)
    )
    appointment = f.appointment(slot=slot)
    closure = closures.create_closure(location=location, first_day=day, actor=SYSTEM).closures[0]
    db.session.commit()
    token = form_token(signed_in, f"/staff/closures/{closure.id}")
    assert f'value="{later.id}"' in signed_in.get(f"/staff/closures/{closure.id}").text
    signed_in.post(
        f"/staff/closures/{closure.id}/slots/{slot.id}/move",
        data={"csrf_token": token, "new_slot_id": later.id},
    )
    db.session.expire_all()
    moved = db.session.get(Appointment, appointment.id)  # the same booking, at the new time
    assert (moved.slot_id, moved.status) == (later.id, AppointmentStatus.BOOKED)
    assert db.session.get(Slot, slot.id).status == SlotStatus.OPEN  # inside the closure: idle
    assert not db.session.scalars(sa.select(Charge)).all()  # the clinic moved it: no fee
    purposes = {n.purpose for n in db.session.scalars(sa.select(Notification))}
    assert Purpose.CANCELLATION not in purposes and purposes  # told it moved, not cancelled


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"first_day": ""}, "Choose the first (and last) day as dates."),
        ({"first_day": "2031-02-30"}, "Choose the first (and last) day as dates."),
        ({"last_day": "2000-01-01"}, "The last day must not be before the first."),
        (
            {"kind": "hours", "start_time": "18:00", "end_time": "09:00"},
            "The clinic must reopen after it closes.",
        ),
        ({"kind": "hours"}, "give the time the clinic closes and reopens"),
        ({"location": "999999"}, "Choose a location, or all locations."),
        ({"first_day": "2001-01-01"}, "That time has already passed."),
    ],
)
def test_bad_closures_get_a_message_on_the_form(
    signed_in: FlaskClient, data: dict[str, str], message: str
) -> None:
    location = f.location()
    db.session.commit()
    token = form_token(signed_in, "/staff/closures")
    body = {
        "csrf_token": token,
        "location": location.id,
        "kind": "days",
        "first_day": "2031-06-01",
    } | data
    response = signed_in.post("/staff/closures", data=body)
    assert response.status_code == 422 and message in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Closure)) == 0


def test_removing_a_closure_offers_its_slots_again(app: Flask) -> None:
    slot, _offers = _offered_slot(patients=1)
    day = _tomorrow_local(NY)
    closure = closures.create_closure(location=slot.location, first_day=day, actor=SYSTEM).closures[
        0
    ]
    advance(slot.id)
    assert db.session.get(Slot, slot.id).fill_exhausted_at is not None
    f.waitlist_entry(slot=slot)  # someone new to ask once it reopens
    assert closures.delete_closure(closure.id, SYSTEM) == 1
    assert db.session.get(Slot, slot.id).fill_exhausted_at is None
    assert advance(slot.id).reason == "wave started"


def test_calendar_marks_closed_days_and_hours_in_the_location_zone(signed_in: FlaskClient) -> None:
    location = f.location(
        name="Santa Monica",
        timezone=LA,
        opening_hours=[{"weekday": d, "start": "09:00", "end": "18:00"} for d in range(7)],
    )
    day = _tomorrow_local(LA) + timedelta(days=3)
    closures.create_closure(location=location, first_day=day, reason="Thanksgiving", actor=SYSTEM)
    closures.create_closure(
        location=location,
        first_day=day + timedelta(days=1),
        start_time=time(14),
        end_time=time(18),
        actor=SYSTEM,
    )
    db.session.commit()
    view = month_view(location, day.year, day.month)
    cells = {c.day: c for week in view.weeks for c in week}
    assert [x.label for x in cells[day].closed] == ["Closed all day"]
    if day + timedelta(days=1) in cells:
        assert [x.label for x in cells[day + timedelta(days=1)].closed] == ["Closed 2 PM–6 PM"]
    html = signed_in.get(f"/staff/closures?location={location.id}&month={day:%Y-%m}").text
    assert "Closed all day: Thanksgiving" in html and "9 AM–6 PM" in html
    assert "America/Los_Angeles" in html
