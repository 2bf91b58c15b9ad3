"""A patient cancels from the appointment link in a real browser on a phone-sized screen:
appointment → Cancel → quote → Confirm → confirmation. Screenshots go to
``SHOTS_DIR`` (default /tmp/shots-i9) for a person to look at."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from portal.db import db, now_utc
from portal.models import Appointment
from portal.models.enums import AppointmentSource, AppointmentStatus, SlotStatus
from portal.services import ledger
from portal.services.links import appointment_token
from tests import factories as f
from tests.e2e.test_offer_browser import _phone, browser  # noqa: F401  (the fixture)

SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots-i9"))

pytestmark = pytest.mark.browser


def _shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_cancel_from_the_appointment_link_on_a_phone(live_server: str, browser: object) -> None:  # noqa: F811
    clinic = f.location(
        name="Fifth Avenue",
        timezone="America/New_York",
        phone="+12125550100",
        address="500 Fifth Ave, New York",
    )
    practitioner = f.practitioner(location=clinic, name="Dr. Maya Lee")
    service = f.service(name="Botox", duration_minutes=30, price_cents=45000)
    start = (now_utc() + timedelta(hours=10)).replace(minute=0, second=0, microsecond=0)
    slot = f.slot(start_at=start, practitioner=practitioner, service=service)
    patient = f.patient(name="Ana Rivera", timezone="America/Los_Angeles")
    appt = f.appointment(
        slot=slot,
        patient=patient,
        source=AppointmentSource.STAFF,
        status=AppointmentStatus.CONFIRMED,
        booked_at=now_utc() - timedelta(days=3),
    )
    db.session.commit()
    link = f"{live_server}/a/{appointment_token(appt.id, patient.id, slot.start_at)}"

    page = _phone(browser)
    page.goto(link)
    assert page.get_by_role("heading", name="You're booked!").is_visible()
    _shot(page, "01-appointment")
    page.get_by_role("button", name="Cancel this appointment").click()
    page.wait_for_url(f"{link}/cancel")
    assert page.get_by_role("heading", name="Cancel this appointment?").is_visible()
    assert page.locator("#quote-amount").inner_text() == "$225.00"
    assert page.get_by_role("button", name="Keep my appointment").is_visible()
    _shot(page, "02-quote")
    page.get_by_role("button", name="Cancel and pay $225.00").click()
    page.wait_for_url(link)
    assert page.get_by_role("heading", name="Your appointment is cancelled").is_visible()
    assert "$225.00" in page.locator(".cancel-summary").inner_text()
    _shot(page, "03-cancelled")

    db.session.expire_all()
    done = db.session.get(Appointment, appt.id)
    assert done.status == AppointmentStatus.CANCELLED and done.cancellation_fee_cents == 22500
    assert done.slot.status == SlotStatus.OPEN
    charge = ledger.charges_for_patient(patient.id)
    assert [(c.amount_cents, s.value) for c, s in charge] == [(22500, "owed")]
