"""Deposit and prepayment holds (SPEC §3.8).

A patient who must pay first (their no-show tier, ``tiers.patient_tier``) gets the
slot ``held`` for a short time instead of booked, with a charge opened in the ledger.
The payment — Stripe Checkout's signed webhook, or staff recording it at the desk —
completes the booking through ``booking.book_slot``; a hold nobody paid for lapses:
the charge fails, the slot reopens and filling carries on. A patient who must pay and
lost a race holds an alternative the same way (``hold_alternative``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Offer, Patient, Slot
from portal.models.enums import (
    AppointmentSource,
    ChargeKind,
    ChargeStatus,
    NoShowTier,
    OfferStatus,
    PaymentProviderName,
    SlotStatus,
)
from portal.queue import schedule
from portal.services import booking, ledger
from portal.services.audit import SYSTEM, Action, Actor, record
from portal.services.errors import Conflict
from portal.services.filling import schedule_fill
from portal.services.settings import settings
from portal.services.tiers import patient_tier

_PAYMENT_FOR_TIER = {
    NoShowTier.DEPOSIT: ChargeKind.DEPOSIT,
    NoShowTier.PREPAYMENT: ChargeKind.PREPAYMENT,
}


def payment_required(patient: Patient, now: datetime | None = None) -> ChargeKind | None:
    """What this patient must pay before a booking completes, if anything (SPEC §3.8)."""
    return _PAYMENT_FOR_TIER.get(patient_tier(patient, now))


def amount_due(kind: ChargeKind, price_cents: int) -> int:
    """What a hold asks for: the price (prepayment) or the deposit, never above the price."""
    if kind == ChargeKind.PREPAYMENT:
        return price_cents
    return min(settings().deposit_cents, price_cents)


def _hold_over(now: datetime) -> sa.ColumnElement[bool]:
    """A hold is over when its time ran out or its offer ended (withdrawn: the patient
    was booked elsewhere) — a slot must not stay held for nobody."""
    offer_ended = (
        sa.select(Offer.id)
        .where(Offer.id == Slot.hold_offer_id, Offer.status != OfferStatus.PENDING)
        .exists()
    )
    return sa.or_(Slot.hold_expires_at <= now, offer_ended)


def lapsed_holds(now: datetime) -> list[tuple[int, int]]:
    """(slot id, offer id) of holds that are over."""
    return [
        (slot_id, offer_id)
        for slot_id, offer_id in db.session.execute(
            sa.select(Slot.id, Slot.hold_offer_id).where(
                Slot.status == SlotStatus.HELD, _hold_over(now)
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
    # The offer lives as long as its hold: the wave's expiry must not end it while the
    # patient is paying (an accept near the window's end holds past the window).
    offer.window_expires_at = max(offer.window_expires_at, hold_until)
    kind = payment_required(patient, now) or ChargeKind.DEPOSIT
    charge = ledger.open_charge(
        patient_id=patient.id,
        kind=kind,
        amount_cents=amount_due(kind, slot.service.price_cents),
        key=f"{kind.value}:offer:{offer.id}",
        description=f"{kind.value.title()} to book {slot.service.name}",
        actor=actor,
        offer_id=offer.id,
        now=now,
    )
    record(
        actor, Action.SLOT_HELD, slot, after={"offer": offer.id, "until": hold_until.isoformat()}
    )
    schedule("expire_hold", slot.id, offer.id, at=hold_until + timedelta(seconds=1))
    return booking.AcceptOutcome(offer, None, charge)


def hold_alternative(
    lost_offer_id: int, slot_id: int, *, actor: Actor, now: datetime | None = None
) -> booking.AcceptOutcome:
    """A patient who must pay first lost a race and chose another time: hold that one.

    The choice becomes a real offer of that slot to the patient (for the same waitlist
    entry), accepted at once into a hold exactly like an accepted wave offer.
    """
    now = now or now_utc()
    lost = booking.get_offer(lost_offer_id)
    offer = db.session.scalar(
        sa.select(Offer).where(Offer.slot_id == slot_id, Offer.patient_id == lost.patient_id)
    )
    if offer is None:
        offer = Offer(
            slot_id=slot_id,
            waitlist_entry_id=lost.waitlist_entry_id,
            patient_id=lost.patient_id,
            wave=0,
            score=0,
            score_reasons=[f"chosen instead of offer {lost.id}"],
            window_expires_at=now + timedelta(seconds=settings().hold_seconds),
            created_at=now,
            updated_at=now,
        )
        db.session.add(offer)
        db.session.flush()
        record(actor, Action.OFFER_CREATED, offer, after={"instead_of": lost.id})
    elif offer.status != OfferStatus.PENDING:
        raise Conflict(
            "That time can't be held for you online; please call the clinic.",
            code="alternative_unavailable",
        )
    return hold_for_payment(offer, lost.patient, actor, now)


def complete_hold(
    offer_id: int,
    *,
    actor: Actor,
    now: datetime | None = None,
    provider: PaymentProviderName = PaymentProviderName.DESK,
    provider_ref: str | None = None,
) -> Appointment:
    """The payment succeeded (Stripe's webhook, or staff at the desk): book the held slot.

    The slot's row is locked first (``book_slot``'s conditional update), so a lapse
    racing the payment either finds the slot booked or wins and this raises.
    """
    now = now or now_utc()
    offer = booking.get_offer(offer_id)
    charge = ledger.hold_charge(offer.id)
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
    ledger.append(
        charge.id,
        ChargeStatus.SUCCEEDED,
        key=f"{charge.idempotency_key}:succeeded",
        actor=actor,
        provider=provider,
        provider_ref=provider_ref,
        note=f"booked appointment {appointment.id}",
        now=now,
    )
    return appointment


def release_hold(slot_id: int, offer_id: int, *, actor: Actor, now: datetime | None = None) -> bool:
    """Let a hold that is over go: the slot reopens and filling carries on. Idempotent."""
    now = now or now_utc()
    slot = booking.updated_row(
        sa.update(Slot)
        .where(
            Slot.id == slot_id,
            Slot.status == SlotStatus.HELD,
            Slot.hold_offer_id == offer_id,
            _hold_over(now),
        )
        .values(status=SlotStatus.OPEN, hold_offer_id=None, hold_expires_at=None, updated_at=now)
        .returning(Slot)
    )
    if slot is None:
        return False
    _close_hold(offer_id, actor, now, status=OfferStatus.EXPIRED)
    record(actor, Action.SLOT_HOLD_LAPSED, slot, after={"offer": offer_id})
    schedule_fill(slot_id)
    return True


def end_hold(slot: Slot, actor: Actor, now: datetime, *, why: str) -> None:
    """End a live hold early (the caller holds the slot's row lock and reopens it)."""
    offer_id = slot.hold_offer_id
    if offer_id is not None:
        _close_hold(offer_id, actor, now, status=OfferStatus.WITHDRAWN, reason=why)
    record(actor, Action.SLOT_HOLD_ENDED, slot, after={"offer": offer_id, "why": why})


def _close_hold(
    offer_id: int, actor: Actor, now: datetime, *, status: OfferStatus, reason: str | None = None
) -> None:
    """The hold's owed charge fails and its offer ends with ``status`` (audited)."""
    charge = ledger.hold_charge(offer_id)
    if charge is not None:
        ledger.append(
            charge.id,
            ChargeStatus.FAILED,
            key=f"{charge.idempotency_key}:failed",
            actor=SYSTEM,
            provider=PaymentProviderName.SYSTEM,
            note=f"hold {reason or status.value} unpaid",
            now=now,
        )
    closed = db.session.scalar(
        sa.update(Offer)
        .where(Offer.id == offer_id, Offer.status == OfferStatus.PENDING)
        .values(status=status, withdrawn_reason=reason, updated_at=now)
        .returning(Offer.id)
    )
    if closed is not None:
        action = Action.OFFER_EXPIRED if status == OfferStatus.EXPIRED else Action.OFFER_WITHDRAWN
        offer = db.session.get(Offer, offer_id, populate_existing=True)
        record(actor, action, offer, after={"reason": reason or "hold lapsed unpaid"})
