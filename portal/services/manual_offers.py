"""Staff offering one open slot to one waiting patient now, through the offer engine.

The offer is made like a wave's (``filling.advance``): under the slot's row lock, with
the category's response window, an audit event, the offer message through the
notification chain and an expiry job. Staff may pass over the ranking (a patient over
the daily cap or outside their hours is their call), never over what would make the
offer wrong: a slot that is not open or inside a closure, a patient already asked or
busy at that time, an entry that is not active or wants something else.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Offer, Slot, WaitlistEntry
from portal.models.enums import OfferStatus, Purpose, SlotStatus, WaitlistStatus
from portal.queue import schedule
from portal.services.audit import Action, Actor, record
from portal.services.errors import Conflict, DomainError, NotFound
from portal.services.filling import lock_slot, wave_expiry
from portal.services.matching import Exclusion, Match, busy_patient_ids, closure_for, match_slot
from portal.services.notify import queue_notification
from portal.services.settings import fill_policy

STAFF_REASON = "offered by staff"


def ranked_for_slot(slot: Slot, now: datetime | None = None) -> tuple[Match, str | None]:
    """The slot's candidates and left-out patients as the engine sees them now.

    The second value says why nobody can be offered the slot at all (else None).
    """
    now = now or now_utc()
    policy = fill_policy(slot.service.category)
    if slot.status != SlotStatus.OPEN:
        return match_slot(slot, now), f"The slot is {slot.status.value}."
    if slot.start_at <= now:
        return match_slot(slot, now), "The slot has already started."
    if closure_for(slot) is not None:
        return match_slot(slot, now, blocked=Exclusion.CLOSURE), "The clinic is closed then."
    if now >= slot.start_at - timedelta(minutes=policy.cutoff_minutes):
        match = match_slot(slot, now, blocked=Exclusion.PAST_CUTOFF)
        return match, "It is past the offer cutoff; staff can still offer it by hand."
    return match_slot(slot, now), None


def _window_end(slot: Slot, now: datetime) -> datetime:
    """The category's window; past the cutoff, the short window, never past the start."""
    policy = fill_policy(slot.service.category)
    expires = wave_expiry(slot, policy, now)
    if expires <= now:
        expires = min(now + timedelta(minutes=policy.near_window_minutes), slot.start_at)
    return expires


def offer_now(slot_id: int, entry_id: int, actor: Actor, now: datetime | None = None) -> Offer:
    """Offer the slot to the entry's patient at once; raise why not if it would be wrong."""
    now = now or now_utc()
    slot = lock_slot(slot_id)
    if slot is None:
        raise NotFound("No such slot.", code="unknown_slot")
    if slot.status != SlotStatus.OPEN:
        raise Conflict(f"This slot is {slot.status.value}: only an open slot can be offered.")
    if slot.start_at <= now:
        raise Conflict("This slot has already started.", code="slot_started")
    if closure_for(slot) is not None:
        raise Conflict("The clinic is closed at that time.", code="slot_in_closure")
    entry = db.session.get(WaitlistEntry, entry_id)
    if entry is None:
        raise NotFound("No such waitlist entry.", code="unknown_entry")
    patient = entry.patient
    if entry.status != WaitlistStatus.ACTIVE:
        raise Conflict(
            f"{patient.name}'s entry is {entry.status.value}: resume it first.",
            code="entry_not_active",
        )
    if (entry.service_id, entry.location_id) != (slot.service_id, slot.location_id):
        raise DomainError(
            f"{patient.name} waits for another service or location.", code="entry_mismatch"
        )
    asked = db.session.scalar(
        sa.select(Offer.status).where(Offer.slot_id == slot.id, Offer.patient_id == patient.id)
    )
    if asked is not None:
        raise Conflict(
            f"{patient.name} was already offered this slot ({asked.value}).",
            code="already_offered",
        )
    if patient.id in busy_patient_ids(slot):
        raise Conflict(
            f"{patient.name} has an appointment or another offer at that time.",
            code="patient_busy",
        )
    live = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Offer)
        .where(
            Offer.slot_id == slot.id,
            Offer.status == OfferStatus.PENDING,
            Offer.window_expires_at > now,
        )
    )
    wave = slot.current_wave if live else slot.current_wave + 1
    expires = _window_end(slot, now)
    offer = Offer(
        slot_id=slot.id,
        waitlist_entry_id=entry.id,
        patient_id=patient.id,
        wave=wave,
        score=0,
        score_reasons=[STAFF_REASON],
        window_expires_at=expires,
        created_at=now,
        updated_at=now,
    )
    db.session.add(offer)
    db.session.flush()
    record(actor, Action.OFFER_CREATED, offer, after={"wave": wave, "by_staff": True})
    queue_notification(patient, Purpose.OFFER, f"offer:{offer.id}", offer_id=offer.id, now=now)
    slot.current_wave = wave
    schedule("expire_wave", slot.id, wave, at=expires + timedelta(seconds=1))
    return offer
