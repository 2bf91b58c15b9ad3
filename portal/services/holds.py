"""Deposit and prepayment holds (SPEC §3.8).

A patient who must pay first gets the slot ``held`` for a short time instead of booked;
staff recording the payment completes the booking through ``booking.book_slot``, and a
hold nobody paid for lapses: the slot reopens and filling carries on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.db import db, now_utc
from portal.models import Appointment, Charge, Offer, Patient, Slot
from portal.models.enums import AppointmentSource, ChargeKind, ChargeStatus, OfferStatus, SlotStatus
from portal.queue import schedule
from portal.services import booking
from portal.services.audit import Action, Actor, record
from portal.services.errors import Conflict
from portal.services.filling import schedule_fill
from portal.services.settings import settings


def payment_required(patient: Patient) -> ChargeKind | None:
    """What this patient must pay before a booking completes, if anything (SPEC §3.8)."""
    if patient.prepayment_required:
        return ChargeKind.PREPAYMENT
    if patient.deposit_required:
        return ChargeKind.DEPOSIT
    return None


def lapsed_holds(now: datetime) -> list[tuple[int, int]]:
    """(slot id, offer id) of holds whose time ran out."""
    return [
        (slot_id, offer_id)
        for slot_id, offer_id in db.session.execute(
            sa.select(Slot.id, Slot.hold_offer_id).where(
                Slot.status == SlotStatus.HELD, Slot.hold_expires_at <= now
            )
        )
    ]


def hold_for_payment(
    offer: Offer, patient: Patient, actor: Actor, now: datetime
) -> booking.AcceptOutcome:
    """Hold the offer's slot for the patient and open the charge they must pay."""
    hold_until = now + timedelta(seconds=settings().hold_seconds)
    slot = booking.updated_row(
        sa.update(Slot)
        .where(Slot.id == offer.slot_id, Slot.status == SlotStatus.OPEN)
        .values(
            status=SlotStatus.HELD,
            hold_offer_id=offer.id,
            hold_expires_at=hold_until,
            updated_at=now,
        )
        .returning(Slot)
    )
    if slot is None:
        booking.raise_for_current_state(offer.slot_id)
    kind = payment_required(patient) or ChargeKind.DEPOSIT
    amount = slot.service.price_cents if kind == ChargeKind.PREPAYMENT else settings().deposit_cents
    key = f"{kind.value}:offer:{offer.id}"
    db.session.execute(
        insert(Charge)
        .values(
            patient_id=patient.id,
            offer_id=offer.id,
            kind=kind,
            amount_cents=amount,
            status=ChargeStatus.PENDING,
            idempotency_key=key,
            description=f"{kind.value.title()} to book {slot.service.name}",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Charge.idempotency_key])
    )
    charge = db.session.scalar(sa.select(Charge).where(Charge.idempotency_key == key))
    record(
        actor, Action.SLOT_HELD, slot, after={"offer": offer.id, "until": hold_until.isoformat()}
    )
    schedule("expire_hold", slot.id, offer.id, at=hold_until + timedelta(seconds=1))
    return booking.AcceptOutcome(offer, None, charge)


def complete_hold(offer_id: int, *, actor: Actor, now: datetime | None = None) -> Appointment:
    """The payment step succeeded (staff marked it collected): book the held slot."""
    now = now or now_utc()
    offer = booking.get_offer(offer_id)
    charge = db.session.scalar(
        sa.select(Charge).where(Charge.offer_id == offer.id, Charge.status == ChargeStatus.PENDING)
    )
    if charge is None:
        raise Conflict("There is no pending payment for this offer.", code="no_pending_charge")
    appointment = booking.book_slot(
        offer.slot_id,
        offer.patient,
        source=AppointmentSource.WAITLIST,
        actor=actor,
        now=now,
        offer=offer,
        from_status=SlotStatus.HELD,
    )
    charge.status = ChargeStatus.COLLECTED
    charge.collected_at = now
    charge.collected_by_id = actor.staff_id
    charge.appointment_id = appointment.id
    record(actor, Action.CHARGE_COLLECTED, charge, after={"amount_cents": charge.amount_cents})
    return appointment


def release_hold(slot_id: int, offer_id: int, *, actor: Actor, now: datetime | None = None) -> bool:
    """Let a lapsed hold go: the slot reopens and filling carries on. Idempotent."""
    now = now or now_utc()
    slot = booking.updated_row(
        sa.update(Slot)
        .where(
            Slot.id == slot_id,
            Slot.status == SlotStatus.HELD,
            Slot.hold_offer_id == offer_id,
            Slot.hold_expires_at <= now,
        )
        .values(status=SlotStatus.OPEN, hold_offer_id=None, hold_expires_at=None, updated_at=now)
        .returning(Slot)
    )
    if slot is None:
        return False
    _close_hold(offer_id, now, status=OfferStatus.EXPIRED)
    record(actor, Action.SLOT_HOLD_LAPSED, slot, after={"offer": offer_id})
    schedule_fill(slot_id)
    return True


def end_hold(slot: Slot, actor: Actor, now: datetime, *, why: str) -> None:
    """End a live hold early (the caller holds the slot's row lock and reopens it)."""
    offer_id = slot.hold_offer_id
    if offer_id is not None:
        _close_hold(offer_id, now, status=OfferStatus.WITHDRAWN, reason=why)
    record(actor, Action.SLOT_HOLD_ENDED, slot, after={"offer": offer_id, "why": why})


def _close_hold(
    offer_id: int, now: datetime, *, status: OfferStatus, reason: str | None = None
) -> None:
    """The hold's pending charge fails and its offer ends with ``status``."""
    db.session.execute(
        sa.update(Charge)
        .where(Charge.offer_id == offer_id, Charge.status == ChargeStatus.PENDING)
        .values(status=ChargeStatus.FAILED, updated_at=now)
    )
    db.session.execute(
        sa.update(Offer)
        .where(Offer.id == offer_id, Offer.status == OfferStatus.PENDING)
        .values(status=status, withdrawn_reason=reason, updated_at=now)
    )
