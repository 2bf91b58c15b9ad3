"""The invariants of SPEC §2 hold in the database itself, whatever the code does."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Charge, Slot
from portal.models.enums import (
    ActorType,
    AppointmentStatus,
    ChargeKind,
    OfferStatus,
    SlotStatus,
    WaitlistStatus,
)
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")


def test_second_active_appointment_on_a_slot_is_rejected() -> None:
    slot = f.slot(status=SlotStatus.BOOKED)
    f.appointment(slot=slot)
    with pytest.raises(IntegrityError, match="uq_appointment_one_active_per_slot"):
        f.appointment(slot=slot)


@pytest.mark.parametrize("inactive", [AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW])
def test_cancelled_or_no_show_appointment_frees_the_slot(inactive: AppointmentStatus) -> None:
    slot = f.slot()
    f.appointment(slot=slot, status=inactive)
    f.appointment(slot=slot)  # a new booking is allowed
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 2


def test_an_accepted_offer_makes_one_booking() -> None:
    slot = f.slot()
    offer = f.offer(slot=slot, status=OfferStatus.ACCEPTED)
    f.appointment(slot=slot, patient=offer.patient, offer_id=offer.id)
    other = f.slot()
    with pytest.raises(IntegrityError, match="uq_appointment_one_per_offer"):
        f.appointment(slot=other, patient=offer.patient, offer_id=offer.id)


def test_a_reopened_slot_may_have_a_second_accepted_offer() -> None:
    slot = f.slot()
    first = f.offer(slot=slot, status=OfferStatus.ACCEPTED)
    f.appointment(slot=slot, offer_id=first.id, status=AppointmentStatus.CANCELLED)
    second = f.offer(slot=slot, status=OfferStatus.ACCEPTED)
    f.appointment(slot=slot, offer_id=second.id)
    db.session.commit()


def test_patient_is_offered_a_slot_only_once() -> None:
    slot = f.slot()
    entry = f.waitlist_entry(slot=slot)
    f.offer(slot=slot, entry=entry)
    with pytest.raises(IntegrityError, match="uq_offer_slot_id"):
        f.offer(slot=slot, entry=entry, wave=2)


def test_charge_idempotency_key_is_unique() -> None:
    patient = f.patient()
    for _ in range(2):
        db.session.add(
            Charge(
                patient_id=patient.id,
                kind=ChargeKind.DEPOSIT,
                amount_cents=5000,
                idempotency_key="deposit:offer:1",
            )
        )
    with pytest.raises(IntegrityError, match="uq_charge_idempotency_key"):
        db.session.flush()


def test_one_active_waitlist_entry_per_patient_service_location() -> None:
    slot = f.slot()
    patient = f.patient()
    f.waitlist_entry(patient=patient, slot=slot, status=WaitlistStatus.BOOKED)
    f.waitlist_entry(patient=patient, slot=slot)
    with pytest.raises(IntegrityError, match="uq_waitlist_entry_one_active"):
        f.waitlist_entry(patient=patient, slot=slot)


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("status", "maybe", "ck_slot_slot_status"),
        ("end_at", datetime(2000, 1, 1, tzinfo=now_utc().tzinfo), "ck_slot_ends_after_start"),
        ("hold_expires_at", now_utc(), "ck_slot_hold_has_expiry"),
    ],
)
def test_slot_check_constraints(column: str, value: object, constraint: str) -> None:
    slot = f.slot()
    db.session.commit()
    with pytest.raises(IntegrityError, match=constraint):
        # Raw SQL: the point is that the database refuses it, not SQLAlchemy.
        db.session.execute(
            sa.text(f"UPDATE slot SET {column} = :value WHERE id = :id"),
            {"value": value, "id": slot.id},
        )


def test_money_cannot_be_negative() -> None:
    with pytest.raises(IntegrityError, match="ck_service_price_not_negative"):
        f.service(price_cents=-1)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        f.slot(start_at=datetime(2030, 1, 1, 9, 0))


def test_datetimes_come_back_aware_in_utc() -> None:
    start = now_utc().replace(microsecond=0) + timedelta(days=2)
    slot_id = f.slot(start_at=start).id
    db.session.commit()
    db.session.expire_all()
    loaded = db.session.get(Slot, slot_id)
    assert loaded.start_at == start
    assert loaded.start_at.utcoffset() == timedelta(0)


def test_audit_events_are_append_only() -> None:
    event = AuditEvent(actor_type=ActorType.SYSTEM, action="test.done", entity_type="slot")
    db.session.add(event)
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(sa.delete(AuditEvent))
    db.session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(sa.update(AuditEvent).values(action="tampered"))
