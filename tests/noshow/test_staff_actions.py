"""Staff on the day view: one-click check-in and completion (htmx and without JS), and
cancelling for a patient with a reason and an audited fee waiver."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Slot
from portal.models.enums import AppointmentStatus, ChargeStatus, SlotStatus
from portal.services import ledger
from portal.services.presentation import when
from tests import factories as f
from tests.conftest import csrf_token_from


def _today_booking(hours: float = 1) -> Appointment:
    start = (now_utc() + timedelta(hours=hours)).replace(second=0, microsecond=0)
    slot = f.slot(start_at=start, service=f.service(price_cents=40000, name="Botox"))
    appt = f.appointment(
        slot=slot, patient=f.patient(name="Dee Arrival"), status=AppointmentStatus.CONFIRMED
    )
    db.session.commit()
    return appt


def _day_url(appt: Appointment) -> str:
    day = when(appt.slot.start_at, appt.slot.location.timezone, "%Y-%m-%d")
    return f"/staff/day?location={appt.slot.location_id}&date={day}"


def test_check_in_then_complete_in_one_click_each_with_htmx(signed_in: FlaskClient) -> None:
    appt = _today_booking()
    page = signed_in.get(_day_url(appt)).text
    assert "Check in" in page
    token = csrf_token_from(page)
    htmx = {"HX-Request": "true", "HX-Target": f"slot-{appt.slot_id}"}

    row = signed_in.post(
        f"/staff/appointments/{appt.id}/check-in", data={"csrf_token": token}, headers=htmx
    )
    assert row.status_code == 200 and f'id="slot-{appt.slot_id}"' in row.text
    assert "Complete" in row.text and "badge checked_in" in row.text
    row = signed_in.post(
        f"/staff/appointments/{appt.id}/complete", data={"csrf_token": token}, headers=htmx
    )
    assert "badge completed" in row.text
    db.session.expire_all()
    done = db.session.get(Appointment, appt.id)
    assert done.status == AppointmentStatus.COMPLETED and done.checked_in_at and done.completed_at
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"appointment.checked_in", "appointment.completed"} <= actions


def test_check_in_works_without_javascript(signed_in: FlaskClient) -> None:
    appt = _today_booking()
    token = csrf_token_from(signed_in.get(_day_url(appt)).text)
    response = signed_in.post(f"/staff/appointments/{appt.id}/check-in", data={"csrf_token": token})
    assert response.status_code == 303 and "/staff/day?" in response.headers["Location"]
    page = signed_in.get(response.headers["Location"]).text
    assert "Dee Arrival is checked in." in page
    early = signed_in.post(
        f"/staff/appointments/{_today_booking().id}/complete", data={"csrf_token": token}
    )
    assert "Check the patient in before completing" in signed_in.get(early.headers["Location"]).text


def test_staff_cancel_for_the_patient_with_a_waiver(signed_in: FlaskClient) -> None:
    appt = _today_booking(hours=2)  # under 4 hours: the full price
    panel = signed_in.get(f"/staff/slots/{appt.slot_id}").text
    assert "Cancel for patient" in panel and "$400.00 (full fee)" in panel
    token = csrf_token_from(panel)
    refused = signed_in.post(
        f"/staff/appointments/{appt.id}/cancel",
        data={"csrf_token": token, "reason": " "},
        headers={"HX-Request": "true"},
    )
    assert "Give a reason" in refused.text
    response = signed_in.post(
        f"/staff/appointments/{appt.id}/cancel",
        data={"csrf_token": token, "reason": "Called: a family emergency", "waive_fee": "1"},
        headers={"HX-Request": "true"},
    )
    assert "the $400.00 fee waived" in response.text
    db.session.expire_all()
    done = db.session.get(Appointment, appt.id)
    assert done.status == AppointmentStatus.CANCELLED and done.cancellation_fee_cents == 0
    assert done.cancelled_by_patient and done.cancel_reason == "Called: a family emergency"
    ((charge, status),) = ledger.charges_for_patient(done.patient_id)
    assert charge.amount_cents == 40000 and status == ChargeStatus.WAIVED
    assert db.session.get(Slot, appt.slot_id).status == SlotStatus.OPEN
    waiver = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "appointment.fee_waived")
    ).one()
    assert waiver.actor_type == "staff"
