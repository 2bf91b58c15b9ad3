"""Moving an appointment and setting a patient's zone through the API."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Notification, Reminder, Slot
from portal.models.enums import AppointmentSource, ReminderStatus, SlotStatus, TimezoneSource
from portal.services import booking
from portal.services.audit import SYSTEM
from tests import factories as f
from tests.api.conftest import ApiClient


def _booked_with_choices():  # type: ignore[no-untyped-def]
    slot = f.slot(start_at=now_utc().replace(second=0, microsecond=0) + timedelta(days=5))
    later = f.slot(
        start_at=slot.start_at + timedelta(hours=3),
        practitioner=slot.practitioner,
        service=slot.service,
    )
    patient = f.patient()
    appointment = booking.book_slot(slot.id, patient, source=AppointmentSource.API, actor=SYSTEM)
    db.session.commit()
    return appointment, slot, later


def test_reschedule_moves_atomically_and_the_old_slot_reopens(api: ApiClient) -> None:
    appointment, old, later = _booked_with_choices()

    resp = api.post(f"/api/v1/appointments/{appointment.id}/reschedule", json={"slot_id": later.id})

    assert resp.status_code == 200, resp.json
    assert resp.json["id"] == appointment.id and resp.json["slot_id"] == later.id
    assert resp.json["status"] == "booked"  # an API move keeps the status it had
    db.session.expire_all()
    assert db.session.get(Slot, old.id).status == SlotStatus.OPEN
    assert db.session.get(Slot, later.id).status == SlotStatus.BOOKED
    live = db.session.scalars(
        sa.select(Reminder).where(Reminder.status == ReminderStatus.SCHEDULED)
    ).all()
    assert {r.slot_start_at for r in live} <= {later.start_at}
    assert [r["status"] for r in resp.json["reminders"]] == ["scheduled"] * len(live)


def test_reschedule_to_a_taken_slot_is_409_with_alternatives_and_changes_nothing(
    api: ApiClient,
) -> None:
    appointment, old, later = _booked_with_choices()
    spare = f.slot(
        start_at=old.start_at + timedelta(hours=5),
        practitioner=old.practitioner,
        service=old.service,
    )
    booking.book_slot(later.id, f.patient(), source=AppointmentSource.API, actor=SYSTEM)
    db.session.commit()

    resp = api.post(f"/api/v1/appointments/{appointment.id}/reschedule", json={"slot_id": later.id})

    assert resp.status_code == 409
    assert resp.json["error"]["code"] == "slot_filled"
    assert [a["slot"]["id"] for a in resp.json["error"]["alternatives"]] == [spare.id]
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).slot_id == old.id
    assert db.session.get(Slot, old.id).status == SlotStatus.BOOKED
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.dedupe_key.like("moved:%"))
        )
        == 0
    )


def test_reschedule_refusals(api: ApiClient) -> None:
    appointment, old, later = _booked_with_choices()
    other_service = f.slot(start_at=old.start_at + timedelta(days=1))
    db.session.commit()
    path = f"/api/v1/appointments/{appointment.id}/reschedule"

    assert api.post(path, json={"slot_id": old.id}).json["error"]["code"] == "same_slot"
    mismatch = api.post(path, json={"slot_id": other_service.id})
    assert (mismatch.status_code, mismatch.json["error"]["code"]) == (422, "service_mismatch")
    unknown = api.post(path, json={"slot_id": 99999})
    assert (unknown.status_code, unknown.json["error"]["code"]) == (422, "unknown_slot")
    assert (
        api.post("/api/v1/appointments/99999/reschedule", json={"slot_id": later.id}).status_code
        == 404
    )
    api.post(f"/api/v1/slots/{old.id}/release")
    gone = api.post(path, json={"slot_id": later.id})
    assert (gone.status_code, gone.json["error"]["code"]) == (409, "not_reschedulable")


def test_patch_patient_sets_or_redetects_the_zone(api: ApiClient) -> None:
    patient = f.patient(phone_e164="+13105550142", timezone="America/New_York")
    db.session.commit()
    path = f"/api/v1/patients/{patient.id}"

    chosen = api.patch(path, json={"timezone": "Pacific/Honolulu"})
    assert chosen.status_code == 200
    assert (chosen.json["timezone"], chosen.json["timezone_source"]) == (
        "Pacific/Honolulu",
        "explicit",
    )

    detected = api.patch(path, json={"timezone": None})
    assert (detected.json["timezone"], detected.json["timezone_source"]) == (
        "America/Los_Angeles",
        TimezoneSource.PHONE.value,
    )
    bad = api.patch(path, json={"timezone": "Mars/Base"})
    assert (bad.status_code, bad.json["error"]["code"]) == (422, "invalid_timezone")
    assert api.patch("/api/v1/patients/99999", json={"timezone": None}).status_code == 404
