"""The "Today" page: each location's own local day, bookings, counts, open work."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import OutreachTask, PatientFlag
from portal.models.enums import AppointmentStatus, FlagKind, SlotStatus
from portal.services import dayview
from portal.services.timezones import local_day_bounds
from tests import factories as f

LA = "America/Los_Angeles"
NY = "America/New_York"


def _local(day: date, hour: int, minute: int, tz: str) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz)).astimezone(UTC)


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (LA, date(2026, 3, 8), 23),  # spring forward
        (LA, date(2026, 11, 1), 25),  # fall back
        (LA, date(2026, 6, 1), 24),
        ("Europe/London", date(2026, 3, 29), 23),
    ],
)
def test_local_day_bounds_follow_dst(tz: str, day: date, hours: int) -> None:
    start, end = local_day_bounds(day, tz)
    assert start.tzinfo is UTC and end - start == timedelta(hours=hours)
    assert start.astimezone(ZoneInfo(tz)).time() == time.min


@pytest.mark.usefixtures("app")
def test_late_evening_slot_belongs_to_the_local_day() -> None:
    la = f.location(name="Santa Monica", timezone=LA)
    doctor = f.practitioner(location=la)
    today = date(2026, 11, 24)
    late = f.slot(practitioner=doctor, start_at=_local(today, 23, 30, LA), minutes=30)
    f.slot(practitioner=doctor, start_at=_local(today + timedelta(days=1), 0, 30, LA))
    f.slot(practitioner=doctor, start_at=_local(today - timedelta(days=1), 23, 30, LA))
    assert late.start_at.date() == date(2026, 11, 25)  # tomorrow in UTC

    rows = dayview.slots_for_local_day(la, today)
    assert [r.slot_id for r in rows] == [late.id]


@pytest.mark.usefixtures("app")
def test_today_uses_each_locations_own_date() -> None:
    la = f.location(name="LA", timezone=LA)
    tokyo = f.location(name="Tokyo", timezone="Asia/Tokyo")
    now = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # Nov 24 22:00 in LA, Nov 25 15:00 in Tokyo
    days = {d.location.id: d.day for d in dayview.today_at_locations(now)}
    assert days == {la.id: date(2026, 11, 24), tokyo.id: date(2026, 11, 25)}


def test_home_lists_today_per_location_in_local_time(signed_in: FlaskClient) -> None:
    la = f.location(name="Santa Monica", timezone=LA)
    ny = f.location(name="Upper East Side", timezone=NY)
    la_doc = f.practitioner(name="Dr. Rivera", location=la)
    ny_doc = f.practitioner(name="Dr. Chen", location=ny)
    botox = f.service(name="Botox touch-up", duration_minutes=30)
    la_today = dayview.local_today(LA)
    ny_today = dayview.local_today(NY)
    late = f.slot(practitioner=la_doc, service=botox, start_at=_local(la_today, 23, 30, LA))
    booked = f.slot(
        practitioner=ny_doc,
        service=botox,
        start_at=_local(ny_today, 9, 0, NY),
        status=SlotStatus.BOOKED,
    )
    f.appointment(slot=booked, patient=f.patient(name="Maya Lopez"))
    f.slot(
        practitioner=ny_doc, service=botox, start_at=_local(ny_today + timedelta(days=1), 9, 0, NY)
    )
    db.session.commit()

    # Below the to-do lists: today at each location.
    html = signed_in.get("/staff/").text.split("Today at each location", 1)[1]
    la_part, ny_part = html.split("Santa Monica", 1)[1].split("Upper East Side", 1)
    assert "11:30 PM" in la_part and "12:00 AM" in la_part and "Dr. Rivera" in la_part
    assert late.start_at.strftime("%Y-%m-%dT%H:%M") in la_part  # the <time datetime> in UTC
    assert "9:00 AM" in ny_part and "Maya Lopez" in ny_part and "Dr. Chen" in ny_part
    assert ny_part.count("<tr>") == 2  # header + the one slot today; tomorrow's is not listed
    assert "Botox touch-up" in ny_part


def test_home_shows_patients_only_for_live_bookings_and_holds(signed_in: FlaskClient) -> None:
    ny = f.location(name="Clinic", timezone=NY)
    doc = f.practitioner(location=ny)
    today = dayview.local_today(NY)
    booked = f.slot(practitioner=doc, start_at=_local(today, 9, 0, NY), status=SlotStatus.BOOKED)
    f.appointment(
        slot=booked, patient=f.patient(name="Ada Checked"), status=AppointmentStatus.CHECKED_IN
    )
    reopened = f.slot(practitioner=doc, start_at=_local(today, 11, 0, NY))
    f.appointment(
        slot=reopened, patient=f.patient(name="Cal Cancelled"), status=AppointmentStatus.CANCELLED
    )
    held = f.slot(practitioner=doc, start_at=_local(today, 13, 0, NY))
    offer = f.offer(slot=held, patient_id=f.patient(name="Hal Holding").id)
    held.status = SlotStatus.HELD
    held.hold_offer_id = offer.id
    held.hold_expires_at = now_utc() + timedelta(minutes=10)
    db.session.commit()

    html = signed_in.get("/staff/").text
    assert "Ada Checked" in html and "Checked in" in html
    assert "Cal Cancelled" not in html
    assert "Hal Holding" in html
    assert "1 open" in html and "1 held" in html and "1 booked" in html


def test_attention_panel_counts_open_work(signed_in: FlaskClient) -> None:
    html = signed_in.get("/staff/").text
    assert "Open outreach tasks" in html and "Open patient flags" in html

    patient = f.patient()
    due = now_utc() + timedelta(hours=1)
    db.session.add_all(
        [
            OutreachTask(patient_id=patient.id, reason="offer", deadline_at=due),
            OutreachTask(patient_id=patient.id, reason="x", deadline_at=due, completed_at=due),
            PatientFlag(patient_id=patient.id, kind=FlagKind.NO_SHOW),
            PatientFlag(patient_id=patient.id, kind=FlagKind.UNREACHABLE, resolved_at=due),
        ]
    )
    db.session.commit()
    counts = dayview.attention_counts()
    assert (counts.open_outreach_tasks, counts.open_patient_flags) == (1, 1)


def test_home_without_locations_says_so(signed_in: FlaskClient) -> None:
    assert "No locations have been set up yet." in signed_in.get("/staff/").text


def test_home_lists_what_to_do_next_with_links(signed_in: FlaskClient) -> None:
    from tests.staff import ops_factories as ops

    ny = f.location(name="Clinic", timezone=NY)
    doc = f.practitioner(location=ny)
    today = dayview.local_today(NY)
    soon = f.slot(practitioner=doc, start_at=now_utc() + timedelta(hours=3))
    stopped = f.slot(
        practitioner=doc,
        start_at=_local(today + timedelta(days=1), 15, 0, NY),
        fill_exhausted_at=now_utc(),
        fill_exhausted_reasons={"daily_cap": 4, "busy": 2},
    )
    f.slot(practitioner=doc, start_at=_local(today + timedelta(days=3), 9, 0, NY))  # not listed
    overdue = ops.offer_task(
        deadline=now_utc() - timedelta(minutes=10), patient=f.patient(name="Olga Overdue")
    )
    flag = ops.flag(FlagKind.UNREACHABLE, patient=f.patient(name="Fred Flagged"))
    db.session.commit()

    html = signed_in.get("/staff/").text
    todo = html.split("Today at each location")[0]
    assert f'/staff/outreach/{overdue.id}"' in todo and "Olga Overdue" in todo and "Overdue" in todo
    assert f"/staff/slots/{soon.id}/candidates" in todo and f"/staff/slots/{stopped.id}" in todo
    assert "Nobody left to ask: 4 over the daily cap, 2 busy" in todo
    assert f"/staff/flags/{flag.id}" in todo and "Fred Flagged" in todo
    assert todo.count("<tr") - todo.count("<thead><tr") >= 4
    nav = html.split('class="staff-nav"')[1].split("</nav>")[0]
    assert "(1 due, 1 overdue)" in nav and "(1 open)" in nav  # counts in the navigation


def test_home_with_nothing_to_do_says_so(signed_in: FlaskClient) -> None:
    f.location()
    db.session.commit()
    assert "All clear" in signed_in.get("/staff/").text


def test_every_staff_page_has_a_skip_link_and_labelled_navigation(signed_in: FlaskClient) -> None:
    for path in (
        "/staff/",
        "/staff/waitlist",
        "/staff/outreach",
        "/staff/flags",
        "/staff/closures",
        "/staff/patients/new",
    ):
        html = signed_in.get(path).text
        assert '<a class="skip-link" href="#main">' in html, path
        assert '<main class="staff-content" id="main"' in html, path
        assert 'aria-label="Staff pages"' in html and 'aria-current="page"' in html, path
        assert "style=" not in html and "<script>" not in html, path
