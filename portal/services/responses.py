"""A patient's answer to an offer, and what an offer means to its patient right now.

Patient pages, SMS replies and voice keypresses all answer through here; the booking
itself is ``booking.book_slot`` and a hold is ``holds.hold_for_payment``.
``offer_state`` is the one reading of an offer's state that pages and replies share.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Offer
from portal.models.enums import AppointmentSource, OfferStatus, SlotStatus
from portal.services import holds
from portal.services.audit import Action, Actor, record
from portal.services.booking import (
    AcceptOutcome,
    OfferUnavailable,
    book_slot,
    check_answerable,
    get_offer,
)
from portal.services.filling import schedule_fill


class OfferState(StrEnum):
    """What the patient can do with an offer right now."""

    OPEN = "open"  # answerable
    BUSY = "busy"  # still open, but someone else is mid-payment on the slot
    HELD = "held"  # accepted, the slot is held while this patient pays
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"  # the window passed unanswered
    WITHDRAWN = "withdrawn"  # called off while the slot is still open
    TAKEN = "taken"  # withdrawn: somebody else booked the slot


#: Offers that ended unanswered: the slot itself may still be booked, besides alternatives.
ENDED_STATES = frozenset({OfferState.EXPIRED, OfferState.WITHDRAWN})
#: States whose page lists choices to book instead.
CHOICE_STATES = ENDED_STATES | {OfferState.TAKEN}


def offer_state(offer: Offer, now: datetime) -> OfferState:
    """Say what an offer means to its patient now (a pending offer may be past its window)."""
    slot = offer.slot
    if offer.status == OfferStatus.WITHDRAWN:
        return OfferState.WITHDRAWN if slot.status == SlotStatus.OPEN else OfferState.TAKEN
    if offer.status != OfferStatus.PENDING:
        return OfferState(offer.status.value)
    if slot.status == SlotStatus.HELD and slot.hold_offer_id == offer.id:
        return OfferState.HELD
    if slot.status in (SlotStatus.BOOKED, SlotStatus.CLOSED):
        return OfferState.TAKEN
    if now >= offer.window_expires_at:
        return OfferState.EXPIRED
    if slot.status == SlotStatus.HELD:
        return OfferState.BUSY
    return OfferState.OPEN


def accept_offer(offer_id: int, *, actor: Actor, now: datetime | None = None) -> AcceptOutcome:
    """Accept an offer: book its slot, or hold it when the patient must pay first."""
    now = now or now_utc()
    offer = get_offer(offer_id)
    check_answerable(offer, now)
    patient = offer.patient
    kind = holds.payment_required(patient, now)
    if kind is not None and holds.amount_due(kind, offer.slot.service.price_cents) > 0:
        return holds.hold_for_payment(offer, patient, actor, now)
    appointment = book_slot(
        offer.slot_id, patient, source=AppointmentSource.WAITLIST, actor=actor, now=now, offer=offer
    )
    return AcceptOutcome(offer, appointment)


def decline_offer(offer_id: int, *, actor: Actor, now: datetime | None = None) -> Offer:
    """Decline an offer; if nobody in the wave is left waiting, the next wave starts now."""
    now = now or now_utc()
    offer = get_offer(offer_id)
    marked = db.session.execute(
        sa.update(Offer)
        .where(Offer.id == offer_id, Offer.status == OfferStatus.PENDING)
        .values(status=OfferStatus.DECLINED, responded_at=now, updated_at=now)
    ).rowcount
    db.session.refresh(offer)
    if marked != 1:
        raise OfferUnavailable(offer.status)
    record(actor, Action.OFFER_DECLINED, offer)
    schedule_fill(offer.slot_id)
    return offer
