"""A patient's appointment on a phone, in a real browser: the time in their zone, "Not your
time zone?" (the phone's own zone preselected), confirm, and pick another time.

Screenshots land in ``$SHOTS_DIR`` (default tests/e2e/screenshots/, git-ignored).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from portal.db import db
from portal.models import Appointment, Slot
from portal.models.enums import AppointmentSource, AppointmentStatus, SlotStatus
from portal.services import booking
from portal.services.audit import SYSTEM
from portal.services.links import appointment_token
from tests import factories as f
from tests.e2e.test_offer_browser import PHONE, browser  # noqa: F401 (fixture)
from tests.patient.conftest import tomorrow_at

SHOTS = Path(os.environ.get("SHOTS_DIR") or Path(__file__).parent / "screenshots")


def _shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _scene() -> tuple[Appointment, list[Slot]]:
    clinic = f.location(
        name="Fifth Avenue",
        timezone="America/New_York",
        phone="+12125550100",
        address="500 Fifth Ave, New York",
    )
    lee = f.practitioner(location=clinic, name="Dr. Maya Lee")
    kim = f.practitioner(location=clinic, name="Dr. Jon Kim")
    filler = f.service(name="Lip filler", duration_minutes=45)
    start = tomorrow_at(10) + timedelta(days=3)
    booked = f.slot(start_at=start, practitioner=lee, service=filler)
    others = [
        f.slot(start_at=start + timedelta(hours=3), practitioner=lee, service=filler),
        f.slot(start_at=start + timedelta(days=1), practitioner=kim, service=filler),
        f.slot(start_at=start - timedelta(days=1, hours=1), practitioner=lee, service=filler),
    ]
    ana = f.patient(name="Ana Alvarez", timezone="America/Los_Angeles")
    appointment = booking.book_slot(booked.id, ana, source=AppointmentSource.STAFF, actor=SYSTEM)
    db.session.commit()
    return appointment, others


def test_appointment_zone_confirm_and_reschedule_on_a_phone(
    live_server: str,
    browser: object,  # noqa: F811
) -> None:
    appointment, others = _scene()
    old_slot_id = appointment.slot_id
    token = appointment_token(appointment.id, appointment.patient_id, appointment.slot.start_at)
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        timezone_id="America/Chicago",  # the phone is somewhere else again
    )
    context.set_default_timeout(15_000)
    page = context.new_page()

    page.goto(f"{live_server}/a/{token}")
    assert page.get_by_role("heading", name="You're booked!").is_visible()
    assert "7:00 AM" in page.locator(".slot-clock").inner_text()  # 10:00 ET, read in LA
    assert "at the clinic" in page.locator(".slot-practice-time").inner_text()
    zone = page.locator("details.zone-switch")
    assert zone.get_attribute("open") is not None  # the phone's zone differs: it says so
    assert "Your phone is set to Chicago" in page.locator("[data-device-zone-hint]").inner_text()
    _shot(page, "01-appointment-and-not-your-time-zone")

    page.get_by_role("button", name="Use this time zone").click()
    page.wait_for_load_state()
    assert "9:00 AM" in page.locator(".slot-clock").inner_text()
    assert "Times are now shown for Chicago" in page.content()
    _shot(page, "02-times-in-the-chosen-zone")

    page.get_by_role("button", name="Confirm I'm coming").click()
    page.get_by_text("Thanks, you're confirmed").wait_for()
    assert page.get_by_role("button", name="Confirm I'm coming").count() == 0
    _shot(page, "03-confirmed")

    page.get_by_role("button", name="Pick another time").click()
    page.get_by_role("heading", name="Pick another time").wait_for()
    cards = page.locator(".slot-card")
    assert cards.count() == 3
    assert "Same practitioner" in (cards.first.locator(".slot-heading").text_content() or "")
    _shot(page, "04-reschedule-list")

    cards.first.get_by_role("button", name="Move to this time").click()
    page.get_by_text("Done: your appointment is now").wait_for()
    _shot(page, "05-moved")

    db.session.expire_all()
    moved = db.session.get(Appointment, appointment.id)
    assert moved.slot_id == others[0].id and moved.status == AppointmentStatus.CONFIRMED
    old = db.session.scalars(sa.select(Slot).where(Slot.id == old_slot_id)).one()
    assert old.status == SlotStatus.OPEN  # offered to the waitlist at once
    context.close()
