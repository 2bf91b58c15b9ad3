"""A patient answering an offer by text (YES/NO) or by phone (1/2).

Both go through the same atomic accept and decline as the offer page
(``responses.accept_offer`` / ``decline_offer``), inside a savepoint so a lost race
rolls back only the booking attempt, not the receipt the webhook stored.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Offer
from portal.models.enums import OfferStatus
from portal.services import booking, responses
from portal.services.audit import Actor
from portal.services.errors import DomainError
from portal.services.responses import OfferState, offer_state

log = logging.getLogger(__name__)


class Answer(StrEnum):
    """How answering went; names the reply template (``reply_<answer>``)."""

    BOOKED = "booked"
    HELD = "held"  # accepted; the slot is held while a deposit or prepayment is taken
    TAKEN = "taken"  # someone else was faster: alternatives are on the offer page
    BUSY = "busy"  # someone else is mid-payment for the slot
    EXPIRED = "expired"
    DECLINED = "declined"
    ALREADY = "already"  # answered before (a repeated text or key press)
    NONE = "none"  # no offer to answer


def accept(offer: Offer) -> Answer:
    """Accept ``offer`` for its patient (flushes; the caller commits)."""
    actor = Actor.patient(offer.patient_id)
    try:
        with db.session.begin_nested():
            outcome = responses.accept_offer(offer.id, actor=actor)
    except (DomainError, sa.exc.DBAPIError) as exc:
        return _answer_for(exc, offer)
    log.info("offer %s accepted by the patient (remote)", offer.id)
    return Answer.HELD if outcome.held else Answer.BOOKED


def decline(offer: Offer) -> Answer:
    """Decline ``offer`` (flushes; the caller commits)."""
    try:
        with db.session.begin_nested():
            responses.decline_offer(offer.id, actor=Actor.patient(offer.patient_id))
    except (DomainError, sa.exc.DBAPIError) as exc:
        return _answer_for(exc, offer)
    return Answer.DECLINED


def _answer_for(exc: DomainError | sa.exc.DBAPIError, offer: Offer) -> Answer:
    """What to tell a patient whose answer could not stand (the savepoint rolled back)."""
    refusal = exc if isinstance(exc, DomainError) else booking.lost_race(exc)
    if refusal is None:
        raise exc
    if isinstance(refusal, booking.SlotHeld):
        return Answer.HELD if _holds_slot(offer) else Answer.BUSY
    if isinstance(refusal, booking.SlotTaken | booking.OfferUnavailable):
        db.session.refresh(offer)
        return answer_for_closed(offer)
    return Answer.NONE


def answer_for_closed(offer: Offer | None) -> Answer:
    """The reply for an offer that can no longer be answered, from its state now."""
    if offer is None:
        return Answer.NONE
    state = offer_state(offer, now_utc())
    if state in (OfferState.TAKEN, OfferState.WITHDRAWN):
        return Answer.TAKEN
    if state == OfferState.EXPIRED:
        return Answer.EXPIRED
    return Answer.ALREADY


def _holds_slot(offer: Offer) -> bool:
    db.session.refresh(offer.slot)
    return offer.slot.hold_offer_id == offer.id


def latest_offer(patient_ids: list[int], *, pending_only: bool) -> Offer | None:
    """Return the newest offer (pending, or any from the last day) of these patients."""
    query = sa.select(Offer).where(Offer.patient_id.in_(patient_ids))
    if pending_only:
        query = query.where(
            Offer.status == OfferStatus.PENDING, Offer.window_expires_at > now_utc()
        )
    else:
        query = query.where(Offer.created_at > now_utc() - timedelta(days=1))
    return db.session.scalar(query.order_by(Offer.created_at.desc(), Offer.id.desc()).limit(1))
