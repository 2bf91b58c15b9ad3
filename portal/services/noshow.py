"""The no-show sweep and what follows a no-show (SPEC §5, seed §4 — fixed).

``mark_due`` takes one batch: appointments still awaiting arrival (booked/confirmed,
no check-in) whose start is at least the grace period past. Their slots are locked
first (``FOR UPDATE OF slot SKIP LOCKED``, the same slot → appointment order as every
other path), then a conditional ``UPDATE … WHERE status IN ('booked','confirmed')``
marks them. Everything a no-show causes — the patient's message, the staff flag, the
freed time — is written in that same transaction, so a sweep that dies mid-batch
leaves nothing half done, and two overlapping sweeps never take the same row: each
appointment is marked, told and counted exactly once. The partial index
``ix_appointment_awaiting_arrival`` on ``starts_at`` makes the cost follow the due rows.

Freed time: if enough of the slot remains (the service's ``min_fill_minutes``, from
``freed_time_lead_minutes`` from now), the remainder becomes a new open slot, offered
at once through the offer engine to waitlisted patients who accept short notice.
Otherwise the practitioner's next open slots are offered again. No offer is invented:
offers are made by ``filling.advance`` like any other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Slot
from portal.models.enums import AppointmentStatus, FlagKind, NoShowTier, Purpose, SlotStatus
from portal.services.appointments import AWAITING_ARRIVAL
from portal.services.audit import SYSTEM, Action, Actor, record, snapshot
from portal.services.filling import on_slot_opened, schedule_fill
from portal.services.flags import raise_flag
from portal.services.notify import queue_notification
from portal.services.settings import settings
from portal.services.tiers import no_show_count, tier_for_count

log = logging.getLogger(__name__)

#: How many of the practitioner's next open slots are offered again when too little of
#: a no-show's slot is left to offer.
NEXT_SLOTS = 3
BATCH = 200


@dataclass
class NoShow:
    """One appointment marked a no-show, and what followed."""

    appointment_id: int
    count: int
    tier: NoShowTier
    freed_slot_id: int | None = None
    restarted_slot_ids: list[int] = field(default_factory=list)


def due_cutoff(now: datetime, grace_minutes: int | None = None) -> datetime:
    """Appointments starting at or before this instant are due."""
    grace = settings().no_show_grace_minutes if grace_minutes is None else grace_minutes
    return now - timedelta(minutes=grace)


def due_statement(cutoff: datetime, limit: int) -> sa.Select:
    """The batch query (``bench/sweep.py`` prints its plan)."""
    return (
        sa.select(Appointment.id, Appointment.slot_id)
        .join(Slot, Slot.id == Appointment.slot_id)
        .where(Appointment.status.in_(AWAITING_ARRIVAL), Appointment.starts_at <= cutoff)
        .order_by(Appointment.starts_at, Appointment.id)
        .limit(limit)
        .with_for_update(of=Slot, skip_locked=True)
    )


def mark_due(
    now: datetime | None = None,
    *,
    grace_minutes: int | None = None,
    limit: int = BATCH,
    actor: Actor = SYSTEM,
) -> list[NoShow]:
    """Mark one batch of due appointments as no-shows and handle each (caller commits)."""
    now = now or now_utc()
    due = db.session.execute(due_statement(due_cutoff(now, grace_minutes), limit)).all()
    if not due:
        return []
    marked = db.session.execute(
        sa.update(Appointment)
        .where(
            Appointment.id.in_([appointment_id for appointment_id, _ in due]),
            Appointment.status.in_(AWAITING_ARRIVAL),
        )
        .values(status=AppointmentStatus.NO_SHOW, no_show_at=now, updated_at=now)
        .returning(Appointment.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    results = []
    for appointment_id in sorted(marked):
        appointment = db.session.get(Appointment, appointment_id, populate_existing=True)
        results.append(_handle(appointment, actor, now))
    return results


def _handle(appointment: Appointment, actor: Actor, now: datetime) -> NoShow:
    """The patient is told (by tier), staff alerted, and the time offered again."""
    db.session.flush()
    count = no_show_count(appointment.patient_id, now)
    tier = tier_for_count(count)
    outcome = NoShow(appointment.id, count, tier)
    record(
        actor,
        Action.APPOINTMENT_NO_SHOW,
        appointment,
        before={"status": "booked"},
        after={"status": "no_show", "count": count, "tier": tier},
    )
    patient = appointment.patient
    context: dict[str, object] = {"tier": tier.value, "count": count}
    if tier == NoShowTier.DISCOUNT:
        context["discount_percent"] = settings().rebook_discount_percent
    elif tier == NoShowTier.DEPOSIT:
        context["deposit_cents"] = settings().deposit_cents
    queue_notification(
        patient,
        Purpose.NO_SHOW,
        f"no_show:{appointment.id}",
        appointment_id=appointment.id,
        context=context,
        now=now,
    )
    months = settings().no_show_window_months
    raise_flag(
        patient,
        FlagKind.NO_SHOW,
        f"{count} no-show{'s' if count != 1 else ''} in {months} months"
        f" (tier: {tier.value}); latest appointment {appointment.id}.",
        actor,
    )
    _free_the_time(appointment.slot, outcome, actor, now)
    return outcome


def _ceil_minutes(instant: datetime, step: int = 5) -> datetime:
    base = instant.replace(second=0, microsecond=0)
    if base < instant:
        base += timedelta(minutes=1)
    return base + timedelta(minutes=-base.minute % step)


def _free_the_time(slot: Slot, outcome: NoShow, actor: Actor, now: datetime) -> None:
    """Offer what is left of the slot, or else the practitioner's next open slots."""
    slot.status = SlotStatus.CLOSED  # nobody is coming; the slot itself is history now
    record(actor, Action.SLOT_CLOSED, slot, after={"why": "no_show"})
    start = _ceil_minutes(now + timedelta(minutes=settings().freed_time_lead_minutes))
    if slot.end_at - start >= timedelta(minutes=slot.service.min_fill_minutes):
        freed = Slot(
            location_id=slot.location_id,
            practitioner_id=slot.practitioner_id,
            service_id=slot.service_id,
            start_at=start,
            end_at=slot.end_at,
            status=SlotStatus.OPEN,
            freed_from_id=slot.id,
            created_at=now,
            updated_at=now,
        )
        db.session.add(freed)
        db.session.flush()
        record(actor, Action.SLOT_FREED, freed, after=snapshot(freed, "start_at", "end_at"))
        on_slot_opened(freed, actor, now)
        outcome.freed_slot_id = freed.id
        return
    upcoming = db.session.scalars(
        sa.select(Slot)
        .where(
            Slot.practitioner_id == slot.practitioner_id,
            Slot.status == SlotStatus.OPEN,
            Slot.start_at > now,
        )
        .order_by(Slot.start_at)
        .limit(NEXT_SLOTS)
        .with_for_update(skip_locked=True)
    ).all()
    for other in upcoming:
        if other.fill_exhausted_at is not None:
            other.fill_exhausted_at = None
            record(actor, Action.SLOT_FILLING_RESTARTED, other, after={"why": "no_show"})
        schedule_fill(other.id)
        outcome.restarted_slot_ids.append(other.id)


def no_shows_since(since: datetime) -> int:
    """How many appointments were marked no-shows since ``since`` (the staff home page)."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Appointment)
        .where(Appointment.status == AppointmentStatus.NO_SHOW, Appointment.no_show_at >= since)
    )
