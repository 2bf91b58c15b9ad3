"""A patient's answer to an offer: accept (booked, or held while they pay) or decline.

Patient pages, SMS replies and voice keypresses all answer through here; the booking
itself is ``booking.book_slot`` and a hold is ``holds.hold_for_payment``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Offer
from portal.models.enums import AppointmentSource, OfferStatus
from portal.services import holds
from portal.services.audit import Actor, record
from portal.services.booking import (
    AcceptOutcome,
    OfferUnavailable,
    book_slot,
    check_answerable,
    get_offer,
)
from portal.services.filling import schedule_fill


def accept_offer(offer_id: int, *, actor: Actor, now: datetime | None = None) -> AcceptOutcome:
    """Accept an offer: book its slot, or hold it when the patient must pay first."""
    now = now or now_utc()
    offer = get_offer(offer_id)
    check_answerable(offer, now)
    patient = offer.patient
    if patient.deposit_required or patient.prepayment_required:
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
    record(actor, "offer.declined", offer)
    schedule_fill(offer.slot_id)
    return offer
