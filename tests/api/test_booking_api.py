"""Booking, releasing and checking in through the API (SPEC §3.6, CONTRACT)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.db import db
from portal.models import Appointment, Notification, Offer, Slot
from portal.models.enums import AppointmentStatus, OfferStatus, Purpose, SlotStatus
from portal.services.filling import advance
from tests import factories as f
from tests.api.conftest import ApiClient


def test_book_returns_201_and_withdraws_pending_offers(api: ApiClient) -> None:
    slot = f.slot()
    f.waitlist_entry(slot=slot)
    (offer,) = advance(slot.id).offers
    patient = f.patient()
    resp = api.post("/api/v1/appointments", json={"slot_id": slot.id, "patient_id": patient.id})
    assert resp.status_code == 201, resp.json
    assert resp.json["source"] == "api" and resp.json["status"] == "booked"
    assert resp.headers["Location"].endswith(f"/api/v1/appointments/{resp.json['id']}")
    assert db.session.get(Offer, offer.id).status == OfferStatus.WITHDRAWN
    told = db.session.scalar(
        sa.select(Notification).where(Notification.purpose == Purpose.SLOT_FILLED)
    )
    assert told.patient_id == offer.patient_id


def test_second_booking_gets_409_slot_filled_with_alternatives(api: ApiClient) -> None:
    slot = f.slot()
    alt = f.slot(
        start_at=slot.start_at + timedelta(hours=2),
        practitioner=slot.practitioner,
        service=slot.service,
    )
    first, second = f.patient(), f.patient()
    assert (
        api.post(
            "/api/v1/appointments", json={"slot_id": slot.id, "patient_id": first.id}
        ).status_code
        == 201
    )
    resp = api.post("/api/v1/appointments", json={"slot_id": slot.id, "patient_id": second.id})
    assert resp.status_code == 409
    error = resp.json["error"]
    assert error["code"] == "slot_filled"
    assert [a["slot"]["id"] for a in error["alternatives"]] == [alt.id]
    assert "Same practitioner" in error["alternatives"][0]["reasons"]


def test_release_reopens_and_check_in(api: ApiClient) -> None:
    slot = f.slot(status=SlotStatus.BOOKED)
    appointment = f.appointment(slot=slot)
    resp = api.post(f"/api/v1/slots/{slot.id}/release")
    assert resp.status_code == 200 and resp.json["status"] == "open"
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).status == AppointmentStatus.CANCELLED
    resp = api.post(f"/api/v1/appointments/{appointment.id}/check-in")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "not_checkable"


@pytest.mark.parametrize("status", [AppointmentStatus.CHECKED_IN, AppointmentStatus.COMPLETED])
def test_release_refuses_a_slot_whose_patient_has_arrived(
    api: ApiClient, status: AppointmentStatus
) -> None:
    """Found by the soak: a release after check-in cancelled a visit under way."""
    slot = f.slot(status=SlotStatus.BOOKED)
    appointment = f.appointment(slot=slot)
    resp = api.post(f"/api/v1/appointments/{appointment.id}/check-in")
    assert resp.status_code == 200 and resp.json["status"] == "checked_in"
    assert resp.json["checked_in_at"]
    if status == AppointmentStatus.COMPLETED:
        assert api.post(f"/api/v1/appointments/{appointment.id}/complete").status_code == 200
    resp = api.post(f"/api/v1/slots/{slot.id}/release")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "slot_in_use"
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).status == status
    assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED
    assert not db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.purpose == Purpose.CANCELLATION)
    )


def test_slot_offers_and_unknown_ids(api: ApiClient) -> None:
    slot = f.slot()
    for _ in range(2):
        f.waitlist_entry(slot=slot)
    advance(slot.id)
    resp = api.get(f"/api/v1/slots/{slot.id}/offers")
    assert resp.status_code == 200
    assert {o["status"] for o in resp.json} == {"pending"} and len(resp.json) == 2
    assert {"id", "slot_id", "patient_id", "status", "wave", "window_expires_at"} <= set(
        resp.json[0]
    )
    assert api.get("/api/v1/slots/999999/offers").status_code == 404
    assert api.post("/api/v1/slots/999999/release").status_code == 404
    assert api.get("/api/v1/appointments/999999").status_code == 404
    bad = api.post("/api/v1/appointments", json={"slot_id": 999999, "patient_id": 1})
    assert bad.status_code == 422 and bad.json["error"]["code"] == "unknown_slot"
    assert db.session.get(Slot, slot.id).status == SlotStatus.OPEN


def test_booking_a_busy_patient_is_409_patient_busy_naming_the_clash(api: ApiClient) -> None:
    first = f.slot()
    clashing = f.slot(start_at=first.start_at + timedelta(minutes=30))
    patient = f.patient()
    booked = api.post("/api/v1/appointments", json={"slot_id": first.id, "patient_id": patient.id})
    resp = api.post("/api/v1/appointments", json={"slot_id": clashing.id, "patient_id": patient.id})
    assert resp.status_code == 409
    error = resp.json["error"]
    assert error["code"] == "patient_busy"
    assert error["appointment_id"] == booked.json["id"]
    db.session.expire_all()
    assert db.session.get(Slot, clashing.id).status == SlotStatus.OPEN


def test_slot_objects_name_their_appointment(api: ApiClient) -> None:
    slot = f.slot()
    assert api.get(f"/api/v1/slots/{slot.id}").json["appointment_id"] is None
    booked = api.post(
        "/api/v1/appointments", json={"slot_id": slot.id, "patient_id": f.patient().id}
    )
    assert api.get(f"/api/v1/slots/{slot.id}").json["appointment_id"] == booked.json["id"]
    released = api.post(f"/api/v1/slots/{slot.id}/release", json={"reason": "Room flooded"})
    assert released.status_code == 200
    assert released.json["status"] == "open" and released.json["appointment_id"] is None
    cancellation = db.session.scalar(
        sa.select(Notification).where(Notification.purpose == Purpose.CANCELLATION)
    )
    assert cancellation.context == {"reason": "Room flooded"}


def test_release_refuses_a_malformed_reason(api: ApiClient) -> None:
    slot = f.slot()
    resp = api.post(f"/api/v1/slots/{slot.id}/release", json={"reason": "x" * 201})
    assert resp.status_code == 422 and resp.json["error"]["code"] == "validation_error"
