"""Slot-filling jobs (queue ``filling``): waves, their expiry, holds, and the sweep."""

from __future__ import annotations

import logging

from jobs import job
from portal.db import db, now_utc
from portal.models import Slot
from portal.services import filling, holds, integrity
from portal.services.audit import SYSTEM
from portal.services.matching import find_candidates

log = logging.getLogger(__name__)


@job
def fill_slot(slot_id: int) -> str:
    """Send the next wave for a slot if none is live."""
    outcome = filling.advance(slot_id)
    db.session.commit()
    return outcome.reason


@job
def expire_wave(slot_id: int, wave: int) -> str:
    """At a wave's deadline: expire its offers and send the next wave."""
    slot = db.session.get(Slot, slot_id)
    if slot is None or slot.current_wave != wave:
        return "stale"
    outcome = filling.advance(slot_id)
    db.session.commit()
    return outcome.reason


@job
def expire_hold(slot_id: int, offer_id: int) -> bool:
    """Reopen a slot whose deposit hold lapsed without payment."""
    released = holds.release_hold(slot_id, offer_id, actor=SYSTEM)
    db.session.commit()
    return released


@job
def reconcile() -> dict[str, int]:
    """Redo whatever a lost job left undone: overdue waves, lapsed holds, stalled slots.

    First it checks the booking invariant and repairs (with an audit event) any slot
    whose status disagrees with its bookings.
    """
    now = now_utc()
    tally = {"repaired": 0, "advanced": 0, "holds_released": 0, "reopened": 0}
    for violation in integrity.find_violations():
        log.warning(
            "slot %s violates the booking invariant (%s)", violation.slot_id, violation.kind
        )
        tally["repaired"] += integrity.repair(violation, SYSTEM, now)
        db.session.commit()
    for slot_id, offer_id in holds.lapsed_holds(now):
        tally["holds_released"] += holds.release_hold(slot_id, offer_id, actor=SYSTEM)
        db.session.commit()
    for slot_id in filling.slots_needing_attention(now):
        outcome = filling.advance(slot_id, now)
        db.session.commit()
        tally["advanced"] += outcome.reason == "wave started"
    for slot in filling.exhausted_open_slots(now):
        # Someone may have joined the waitlist since filling stopped.
        if find_candidates(slot, now):
            slot.fill_exhausted_at = None
            tally["reopened"] += 1
            filling.advance(slot.id, now)
        db.session.commit()
    return tally
