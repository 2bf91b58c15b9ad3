"""The booking invariant, checked and repaired: a slot is booked exactly when it has a booking.

The database refuses to commit a violation (the ``slot_booking_consistent`` constraint
triggers, migration 0002); this module finds any that predate them or slipped past by
other means, and repairs each with an audit event. ``reconcile`` runs it every minute.

- ``ghost``: ``booked`` (or ``held``) with no active appointment (or no hold offer) —
  nobody is coming, yet nobody will be offered the time. Repaired by reopening.
- ``unmarked``: ``open``/``closed``/``held`` while an appointment is active — a patient
  believes they are booked. Repaired by marking the slot ``booked`` (never by
  cancelling a patient's booking behind their back).
- ``double``: more than one active appointment (the unique index forbids it; reported).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Slot
from portal.models.enums import INACTIVE_APPOINTMENT_STATUSES, SlotStatus
from portal.services.audit import SYSTEM, Action, Actor, record
from portal.services.filling import lock_slot, on_slot_opened

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Violation:
    """One slot whose status disagrees with its bookings."""

    slot_id: int
    status: SlotStatus
    active_appointments: int
    kind: str  # ghost | unmarked | double


def _active_counts() -> sa.Subquery:
    return (
        sa.select(Appointment.slot_id, sa.func.count().label("active"))
        .where(Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES))
        .group_by(Appointment.slot_id)
        .subquery()
    )


def find_violations(slot_id: int | None = None, limit: int = 1000) -> list[Violation]:
    """Return slots (or just ``slot_id``) whose status disagrees with their bookings."""
    counts = _active_counts()
    active = sa.func.coalesce(counts.c.active, 0)
    wrong = sa.or_(
        sa.and_(Slot.status == SlotStatus.BOOKED, active != 1),
        sa.and_(Slot.status != SlotStatus.BOOKED, active != 0),
        sa.and_(Slot.status == SlotStatus.HELD, Slot.hold_offer_id.is_(None)),
    )
    query = sa.select(Slot.id, Slot.status, active).outerjoin(counts, counts.c.slot_id == Slot.id)
    if slot_id is not None:
        query = query.where(Slot.id == slot_id)
    rows = db.session.execute(query.where(wrong).order_by(Slot.id).limit(limit))
    return [Violation(sid, status, n, _kind(status, n)) for sid, status, n in rows]


def _kind(status: SlotStatus, active: int) -> str:
    if active > 1:
        return "double"
    if active == 1:
        return "unmarked"
    return "ghost"


def repair(violation: Violation, actor: Actor = SYSTEM, now: datetime | None = None) -> bool:
    """Bring one slot back in line with its bookings (under its row lock); True if changed."""
    now = now or now_utc()
    slot = lock_slot(violation.slot_id)
    current = next(iter(find_violations(slot.id)), None)
    if current is None or current.kind == "double":
        return False  # repaired meanwhile, or nothing safe to do without a person
    before = {"status": slot.status.value, "active_appointments": current.active_appointments}
    if current.kind == "ghost":
        on_slot_opened(slot, actor, now)
    else:
        slot.status = SlotStatus.BOOKED
        slot.hold_offer_id = None
        slot.hold_expires_at = None
    record(actor, Action.SLOT_REPAIRED, slot, before=before, after={"status": slot.status.value})
    log.warning("slot %s repaired: %s (%s)", slot.id, current.kind, before["status"])
    return True
