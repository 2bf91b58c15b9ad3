"""Filling an opened slot: waves of offers, expiry, and the end state (SPEC §3.1–3.3).

``advance`` is the single state step. It runs under a short row lock on the slot (no
network calls inside), so a wave-expiry job, the reconcile sweep and a decline that
all fire at once still start exactly one next wave.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, insert_rows, now_utc
from portal.models import Offer, Slot
from portal.models.enums import OfferMode, OfferStatus, Purpose, SlotStatus
from portal.queue import schedule
from portal.services.audit import SYSTEM, Action, Actor, record, record_each, snapshot
from portal.services.learning import wave_size
from portal.services.matching import Exclusion, Match, closure_for, match_slot
from portal.services.notify import Message, queue_notifications
from portal.services.notify.policy import quiet_until
from portal.services.offers import update_offers
from portal.services.settings import FillPolicy, fill_policy, settings

log = logging.getLogger(__name__)

#: A learned wave stays open for this share (1/N) of the time left before the cutoff.
LEARNED_WINDOW_SHARE = 4


@dataclass
class WaveOutcome:
    """What ``advance`` did, for callers, logs and tests."""

    reason: str
    wave: int = 0
    offers: list[Offer] = field(default_factory=list)
    expired: int = 0


def on_slot_opened(slot: Slot, actor: Actor, now: datetime | None = None) -> None:
    """Mark ``slot`` freshly open and start filling it once the caller commits."""
    now = now or now_utc()
    slot.status = SlotStatus.OPEN
    slot.opened_at = now
    slot.fill_exhausted_at = None
    slot.hold_offer_id = None
    slot.hold_expires_at = None
    record(actor, Action.SLOT_OPENED, slot, after=snapshot(slot, "status", "start_at"))
    schedule_fill(slot.id)


def schedule_fill(slot_id: int) -> None:
    """Run ``advance`` for the slot after the current transaction commits."""
    schedule("fill_slot", slot_id)


def wave_expiry(slot: Slot, policy: FillPolicy, now: datetime) -> datetime:
    """When a wave sent now stops accepting answers: shorter near the slot, never past cutoff.

    The learned mode sizes the window to the time left: a quarter of it up to the
    cutoff (still room for four waves), between the policy's window and
    ``learned_far_window_minutes``, so a patient who reads a text in an hour is not
    dropped from a slot that is days away. A learned window that would close inside
    the clinic's quiet hours stays open until the same window after they end: an offer
    made in the evening goes by e-mail and is mostly read the next morning, and one that
    expired overnight would cost the slot that patient for good (nobody is offered the
    same slot twice), while the next wave could only go by e-mail too.
    """
    lead = slot.start_at - now
    near = lead <= timedelta(hours=policy.near_hours)
    window = timedelta(minutes=policy.near_window_minutes if near else policy.window_minutes)
    cutoff = cutoff_at(slot, policy)
    if policy.mode != OfferMode.LEARNED:
        return min(now + window, cutoff)
    far = timedelta(minutes=settings().learned_far_window_minutes)
    window = max(window, min(far, (cutoff - now) / LEARNED_WINDOW_SHARE))
    expires = now + window
    morning = quiet_until(expires, slot.location.timezone)
    if morning is not None:
        expires = morning + window
    return min(expires, cutoff)


def cutoff_at(slot: Slot, policy: FillPolicy) -> datetime:
    """No new offers after this. Freed time (a no-show's remainder, which starts within
    minutes by design) is offered right up to its start."""
    if slot.freed_from_id is not None:
        return slot.start_at
    return slot.start_at - timedelta(minutes=policy.cutoff_minutes)


def expire_overdue_offers(slot_id: int, now: datetime, actor: Actor = SYSTEM) -> int:
    """Expire pending offers whose window has passed; returns how many."""
    expired = update_offers(
        sa.and_(
            Offer.slot_id == slot_id,
            Offer.status == OfferStatus.PENDING,
            Offer.window_expires_at <= now,
        ),
        status=OfferStatus.EXPIRED,
        updated_at=now,
    )
    for offer in expired:
        record(actor, Action.OFFER_EXPIRED, offer)
    return len(expired)


def _live_offers(slot_id: int, now: datetime) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Offer)
        .where(
            Offer.slot_id == slot_id,
            Offer.status == OfferStatus.PENDING,
            Offer.window_expires_at > now,
        )
    )


def lock_slot(slot_id: int) -> Slot | None:
    """Lock the slot's row and return it as it is now (not as this session last saw it).

    ``populate_existing`` matters: a session that loaded the slot earlier keeps that copy
    in its identity map, and without it the locked row's fresh values would be ignored —
    a release that read ``open`` before a booking committed would then "reopen" a slot
    it believes is already open, leaving it booked with a cancelled appointment.
    """
    return db.session.scalar(
        sa.select(Slot)
        .where(Slot.id == slot_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def advance(slot_id: int, now: datetime | None = None, actor: Actor = SYSTEM) -> WaveOutcome:
    """Expire an overdue wave and send the next; a no-op while a wave is still live."""
    now = now or now_utc()
    slot = lock_slot(slot_id)
    if slot is None:
        return WaveOutcome("no such slot")
    expired = expire_overdue_offers(slot.id, now, actor)
    if slot.status != SlotStatus.OPEN:
        return WaveOutcome(f"slot is {slot.status.value}", expired=expired)
    if _live_offers(slot.id, now):
        return WaveOutcome("wave in progress", slot.current_wave, expired=expired)
    if slot.fill_exhausted_at is not None:
        return WaveOutcome("nobody left to ask", slot.current_wave, expired=expired)
    policy = fill_policy(slot.service.category)
    if now >= cutoff_at(slot, policy):
        match = match_slot(slot, now, blocked=Exclusion.PAST_CUTOFF)
        return _exhaust(slot, now, actor, "past the offer cutoff", expired, match)
    if closure_for(slot) is not None:
        match = match_slot(slot, now, blocked=Exclusion.CLOSURE)
        return _exhaust(slot, now, actor, "inside a closure", expired, match)
    match = match_slot(slot, now)
    candidates = match.candidates
    if not candidates:
        return _exhaust(slot, now, actor, "no matching waitlist entries", expired, match)
    batch = candidates if policy.batch_size is None else candidates[: policy.batch_size]
    if policy.mode == OfferMode.LEARNED:
        tunables = settings()
        size = wave_size(
            [c.acceptance or 0.0 for c in candidates],
            tunables.learned_wave_target_percent / 100,
            tunables.learned_wave_max,
        )
        batch = candidates[:size]
    wave = slot.current_wave + 1
    expires = wave_expiry(slot, policy, now)
    # One statement each for the offers, their audit events and their messages, however
    # many patients the wave asks (a broadcast may ask hundreds).
    made = insert_rows(
        Offer.__table__,
        [
            {
                "slot_id": slot.id,
                "waitlist_entry_id": candidate.entry.id,
                "patient_id": candidate.patient.id,
                "status": OfferStatus.PENDING,
                "wave": wave,
                "mode": policy.mode,
                "score": candidate.score,
                "score_reasons": candidate.reasons,
                "predicted_acceptance": candidate.acceptance,
                "window_expires_at": expires,
                "created_at": now,
                "updated_at": now,
            }
            for candidate in batch
        ],
    )
    offers = list(
        db.session.scalars(
            sa.select(Offer).where(Offer.id.in_([row.id for row in made])).order_by(Offer.id)
        )
    )
    record_each(actor, Action.OFFER_CREATED, offers, after=lambda o: snapshot(o, "wave", "score"))
    patients = {candidate.patient.id: candidate.patient for candidate in batch}
    queue_notifications(  # at the clock's time now: a sweep's ``now`` may be a minute old
        [Message(patients[o.patient_id], f"offer:{o.id}", offer_id=o.id) for o in offers],
        Purpose.OFFER,
    )
    slot.current_wave = wave
    record(
        actor,
        Action.SLOT_WAVE_STARTED,
        slot,
        after={"wave": wave, "offers": len(offers), "mode": policy.mode.value},
    )
    schedule("expire_wave", slot.id, wave, at=expires + timedelta(seconds=1))
    log.info("slot %s: wave %s sent to %s patients", slot.id, wave, len(offers))
    return WaveOutcome("wave started", wave, offers, expired)


def _exhaust(
    slot: Slot, now: datetime, actor: Actor, why: str, expired: int, match: Match
) -> WaveOutcome:
    slot.fill_exhausted_at = now
    slot.fill_exhausted_reasons = {str(reason): n for reason, n in match.excluded.items()}
    record(
        actor,
        Action.SLOT_FILL_EXHAUSTED,
        slot,
        after={"reason": why, "waves": slot.current_wave, "excluded": slot.fill_exhausted_reasons},
    )
    log.info("slot %s: filling stopped (%s)", slot.id, why)
    return WaveOutcome(why, slot.current_wave, expired=expired)


def slots_needing_attention(now: datetime, limit: int = 200) -> list[int]:
    """Open future slots with no live wave (a lost job, an overdue wave), for reconcile."""
    live = (
        sa.select(Offer.id)
        .where(
            Offer.slot_id == Slot.id,
            Offer.status == OfferStatus.PENDING,
            Offer.window_expires_at > now,
        )
        .exists()
    )
    return list(
        db.session.scalars(
            sa.select(Slot.id)
            .where(
                Slot.status == SlotStatus.OPEN,
                Slot.start_at > now,
                Slot.fill_exhausted_at.is_(None),
                ~live,
            )
            .order_by(Slot.start_at)
            .limit(limit)
        )
    )


def exhausted_open_slots(now: datetime, limit: int = 100) -> list[Slot]:
    """Open future slots where filling stopped for want of candidates."""
    return list(
        db.session.scalars(
            sa.select(Slot)
            .where(
                Slot.status == SlotStatus.OPEN,
                Slot.start_at > now,
                Slot.fill_exhausted_at.is_not(None),
            )
            .order_by(Slot.start_at)
            .limit(limit)
        )
    )
