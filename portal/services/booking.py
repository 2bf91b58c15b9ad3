"""Booking a slot: the one atomic path every booking takes (SPEC §3.4–3.8).

Accepting an offer, booking an alternative, staff and API bookings all end in
``book_slot``: a conditional ``UPDATE slot … WHERE status = 'open'`` (under READ
COMMITTED a blocked loser re-checks the condition after the winner commits and finds
it false), the appointment insert guarded by the partial unique index, and the
withdrawal of every other pending offer. No lock is held across a network call: the
messages are outbox rows and jobs are enqueued after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.db import db, now_utc
from portal.models import Appointment, Charge, Offer, Patient, Slot, WaitlistEntry
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    ChargeKind,
    ChargeStatus,
    OfferStatus,
    Purpose,
    SlotStatus,
    WaitlistStatus,
)
from portal.queue import enqueue_after_commit
from portal.services.audit import Actor, record, snapshot
from portal.services.errors import Conflict, DomainError, NotFound
from portal.services.notify import queue_notification
from portal.services.settings import get_setting

log = logging.getLogger(__name__)


class SlotTaken(Conflict):
    default_code = "slot_filled"
    default_message = "This slot was just taken by someone else."


class SlotHeld(Conflict):
    default_code = "slot_held"
    default_message = "Someone is completing a booking for this slot right now."


class SlotNotBookable(Conflict):
    default_code = "slot_not_bookable"
    default_message = "This slot cannot be booked."


class OfferUnavailable(DomainError):
    """The offer can no longer be answered; ``code`` says why (offer_expired, …)."""

    default_status = 409

    def __init__(self, status: OfferStatus) -> None:
        super().__init__(f"This offer is {status.value}.", code=f"offer_{status.value}", details={})
        self.offer_status = status


@dataclass
class AcceptOutcome:
    """An accepted offer: booked outright, or held pending a deposit/prepayment."""

    offer: Offer
    appointment: Appointment | None = None
    charge: Charge | None = None

    @property
    def held(self) -> bool:
        return self.appointment is None


def book_slot(
    slot_id: int,
    patient: Patient,
    *,
    source: AppointmentSource,
    actor: Actor,
    now: datetime | None = None,
    offer: Offer | None = None,
    from_status: SlotStatus = SlotStatus.OPEN,
) -> Appointment:
    """Book ``slot_id`` for ``patient`` or raise ``SlotTaken``/``SlotHeld`` (caller rolls back)."""
    now = now or now_utc()
    guard = [Slot.id == slot_id, Slot.status == from_status]
    if from_status == SlotStatus.HELD:
        guard.append(Slot.hold_offer_id == (offer.id if offer else None))
    won = db.session.execute(
        sa.update(Slot)
        .where(*guard)
        .values(status=SlotStatus.BOOKED, hold_offer_id=None, hold_expires_at=None, updated_at=now)
    ).rowcount
    if won != 1:
        _raise_for_current_state(slot_id)
    slot = db.session.get(Slot, slot_id)
    db.session.refresh(slot)
    if offer is not None:
        _mark_accepted(offer, now, within_window=from_status == SlotStatus.OPEN)
    appointment = Appointment(
        slot_id=slot_id,
        patient_id=patient.id,
        source=source,
        status=(
            AppointmentStatus.CONFIRMED
            if source in (AppointmentSource.WAITLIST, AppointmentSource.ALTERNATIVE)
            else AppointmentStatus.BOOKED
        ),
        booked_at=now,
        confirmed_at=now if source != AppointmentSource.STAFF else None,
        offer_id=offer.id if offer else None,
        waitlist_entry_id=_entry_for(patient.id, slot, offer),
        booked_by_staff_id=actor.staff_id,
    )
    db.session.add(appointment)
    db.session.flush()  # the partial unique index is the last line of defence
    record(actor, "slot.booked", slot, after={"status": "booked", "appointment": appointment.id})
    record(actor, "appointment.created", appointment, after=snapshot(appointment, "source"))
    if offer is not None:
        record(actor, "offer.accepted", offer, after={"appointment": appointment.id})
    withdraw_pending_offers(slot, actor, now, keep_offer_id=offer.id if offer else None)
    close_waitlist_entries(patient.id, slot.service_id, actor, now)
    queue_notification(
        patient,
        Purpose.CONFIRMATION,
        f"confirmation:{appointment.id}",
        appointment_id=appointment.id,
    )
    return appointment


def _mark_accepted(offer: Offer, now: datetime, *, within_window: bool) -> None:
    """Mark the offer accepted if it is still answerable (after the slot is won).

    Lock order matters: the slot row first, then offer rows, everywhere. A loser blocks
    on the slot and never touches its own offer, so the winner can withdraw it.
    """
    guard = [Offer.id == offer.id, Offer.status == OfferStatus.PENDING]
    if within_window:
        guard.append(Offer.window_expires_at > now)
    marked = db.session.execute(
        sa.update(Offer)
        .where(*guard)
        .values(status=OfferStatus.ACCEPTED, responded_at=now, updated_at=now)
    ).rowcount
    db.session.refresh(offer)
    if marked != 1:
        _check_answerable(offer, now)
        raise OfferUnavailable(offer.status)


def _raise_for_current_state(slot_id: int) -> None:
    status = db.session.scalar(sa.select(Slot.status).where(Slot.id == slot_id))
    if status is None:
        raise NotFound("No such slot.", code="unknown_slot")
    if status == SlotStatus.HELD:
        raise SlotHeld()
    if status == SlotStatus.CLOSED:
        raise SlotNotBookable("This slot is closed.")
    raise SlotTaken()


def _entry_for(patient_id: int, slot: Slot, offer: Offer | None) -> int | None:
    if offer is not None:
        return offer.waitlist_entry_id
    return db.session.scalar(
        sa.select(WaitlistEntry.id).where(
            WaitlistEntry.patient_id == patient_id,
            WaitlistEntry.service_id == slot.service_id,
            WaitlistEntry.location_id == slot.location_id,
            WaitlistEntry.status == WaitlistStatus.ACTIVE,
        )
    )


def withdraw_pending_offers(
    slot: Slot, actor: Actor, now: datetime, *, keep_offer_id: int | None = None
) -> list[int]:
    """Withdraw every other pending offer for ``slot`` and tell those patients."""
    rows = db.session.execute(
        sa.update(Offer)
        .where(
            Offer.slot_id == slot.id,
            Offer.status == OfferStatus.PENDING,
            Offer.id != (keep_offer_id or 0),
        )
        .values(status=OfferStatus.WITHDRAWN, withdrawn_reason="slot_filled", updated_at=now)
        .returning(Offer.id, Offer.patient_id)
    ).all()
    for offer_id, patient_id in rows:
        offer = db.session.get(Offer, offer_id)
        record(actor, "offer.withdrawn", offer, after={"reason": "slot_filled"})
        queue_notification(
            db.session.get(Patient, patient_id),
            Purpose.SLOT_FILLED,
            f"slot_filled:{offer_id}",
            offer_id=offer_id,
        )
    return [offer_id for offer_id, _ in rows]


def close_waitlist_entries(patient_id: int, service_id: int, actor: Actor, now: datetime) -> None:
    """A patient who booked a service leaves every active waitlist entry for it (§3.7)."""
    closed = db.session.scalars(
        sa.update(WaitlistEntry)
        .where(
            WaitlistEntry.patient_id == patient_id,
            WaitlistEntry.service_id == service_id,
            WaitlistEntry.status == WaitlistStatus.ACTIVE,
        )
        .values(status=WaitlistStatus.BOOKED, closed_at=now, updated_at=now)
        .returning(WaitlistEntry.id)
    ).all()
    for entry_id in closed:
        record(
            actor,
            "waitlist.closed",
            db.session.get(WaitlistEntry, entry_id),
            after={"why": "booked"},
        )


def _check_answerable(offer: Offer, now: datetime) -> None:
    if offer.status == OfferStatus.PENDING and now >= offer.window_expires_at:
        raise OfferUnavailable(OfferStatus.EXPIRED)
    if offer.status != OfferStatus.PENDING:
        raise OfferUnavailable(offer.status)


def accept_offer(offer_id: int, *, actor: Actor, now: datetime | None = None) -> AcceptOutcome:
    """Accept an offer: book its slot, or hold it when the patient must pay first."""
    now = now or now_utc()
    offer = db.session.get(Offer, offer_id)
    if offer is None:
        raise NotFound("No such offer.", code="unknown_offer")
    _check_answerable(offer, now)
    patient = offer.patient
    if patient.deposit_required or patient.prepayment_required:
        return _hold_for_payment(offer, patient, actor, now)
    appointment = book_slot(
        offer.slot_id, patient, source=AppointmentSource.WAITLIST, actor=actor, now=now, offer=offer
    )
    return AcceptOutcome(offer, appointment)


def decline_offer(offer_id: int, *, actor: Actor, now: datetime | None = None) -> Offer:
    """Decline an offer; if nobody in the wave is left waiting, the next wave starts now."""
    from portal.services.filling import schedule_fill

    now = now or now_utc()
    offer = db.session.get(Offer, offer_id)
    if offer is None:
        raise NotFound("No such offer.", code="unknown_offer")
    marked = db.session.execute(
        sa.update(Offer)
        .where(Offer.id == offer_id, Offer.status == OfferStatus.PENDING)
        .values(status=OfferStatus.DECLINED, responded_at=now, updated_at=now)
    ).rowcount
    db.session.refresh(offer)
    if marked != 1:
        raise OfferUnavailable(offer.status)
    record(actor, "offer.declined", offer)
    schedule_fill(offer.slot_id)
    return offer


# --- deposit / prepayment holds (SPEC §3.8) ---------------------------------------


def _hold_for_payment(offer: Offer, patient: Patient, actor: Actor, now: datetime) -> AcceptOutcome:
    hold_until = now + timedelta(seconds=get_setting("hold_seconds"))
    held = db.session.execute(
        sa.update(Slot)
        .where(Slot.id == offer.slot_id, Slot.status == SlotStatus.OPEN)
        .values(
            status=SlotStatus.HELD,
            hold_offer_id=offer.id,
            hold_expires_at=hold_until,
            updated_at=now,
        )
    ).rowcount
    if held != 1:
        _raise_for_current_state(offer.slot_id)
    slot = db.session.get(Slot, offer.slot_id)
    db.session.refresh(slot)
    kind = ChargeKind.PREPAYMENT if patient.prepayment_required else ChargeKind.DEPOSIT
    amount = (
        slot.service.price_cents if kind == ChargeKind.PREPAYMENT else get_setting("deposit_cents")
    )
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
    record(actor, "slot.held", slot, after={"offer": offer.id, "until": hold_until.isoformat()})
    from jobs.filling import expire_hold

    enqueue_after_commit(
        db.session,
        expire_hold,
        slot.id,
        offer.id,
        queue="filling",
        at=hold_until + timedelta(seconds=1),
    )
    return AcceptOutcome(offer, None, charge)


def complete_hold(offer_id: int, *, actor: Actor, now: datetime | None = None) -> Appointment:
    """The payment step succeeded (staff marked it collected): book the held slot."""
    now = now or now_utc()
    offer = db.session.get(Offer, offer_id)
    if offer is None:
        raise NotFound("No such offer.", code="unknown_offer")
    charge = db.session.scalar(
        sa.select(Charge).where(Charge.offer_id == offer.id, Charge.status == ChargeStatus.PENDING)
    )
    if charge is None:
        raise Conflict("There is no pending payment for this offer.", code="no_pending_charge")
    appointment = book_slot(
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
    record(actor, "charge.collected", charge, after={"amount_cents": charge.amount_cents})
    return appointment


def release_hold(slot_id: int, offer_id: int, *, actor: Actor, now: datetime | None = None) -> bool:
    """Let a lapsed hold go: the slot reopens and filling carries on. Idempotent."""
    from portal.services.filling import schedule_fill

    now = now or now_utc()
    released = db.session.execute(
        sa.update(Slot)
        .where(
            Slot.id == slot_id,
            Slot.status == SlotStatus.HELD,
            Slot.hold_offer_id == offer_id,
            Slot.hold_expires_at <= now,
        )
        .values(status=SlotStatus.OPEN, hold_offer_id=None, hold_expires_at=None, updated_at=now)
    ).rowcount
    if released != 1:
        return False
    db.session.execute(
        sa.update(Charge)
        .where(Charge.offer_id == offer_id, Charge.status == ChargeStatus.PENDING)
        .values(status=ChargeStatus.FAILED, updated_at=now)
    )
    db.session.execute(
        sa.update(Offer)
        .where(Offer.id == offer_id, Offer.status == OfferStatus.PENDING)
        .values(status=OfferStatus.EXPIRED, updated_at=now)
    )
    slot = db.session.get(Slot, slot_id)
    record(actor, "slot.hold_lapsed", slot, after={"offer": offer_id})
    schedule_fill(slot_id)
    return True
