"""Creating slots: a practitioner's bookable time for a service, open for filling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Practitioner, Service, Slot
from portal.models.enums import SlotStatus
from portal.services import audit
from portal.services.audit import Action, Actor
from portal.services.errors import Conflict, DomainError
from portal.services.filling import on_slot_opened
from portal.services.timezones import refuse_skipped_wall_time

#: Longer than any treatment: a guard against unit mistakes (hours given as minutes).
MAX_SLOT_LENGTH = timedelta(hours=12)
#: How far ahead a slot may start: a sane horizon for any practice's book.
MAX_SLOT_HORIZON = timedelta(days=730)


def _aware_utc(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise DomainError(f"{field} must carry a UTC offset.", code="invalid_datetime")
    return value.astimezone(UTC)


def overlapping_slot(practitioner_id: int, start_at: datetime, end_at: datetime) -> Slot | None:
    """Return a non-closed slot of the practitioner that overlaps [start_at, end_at)."""
    return db.session.scalars(
        sa.select(Slot)
        .where(
            Slot.practitioner_id == practitioner_id,
            Slot.status != SlotStatus.CLOSED,
            Slot.start_at < end_at,
            Slot.end_at > start_at,
        )
        .order_by(Slot.start_at)
        .limit(1)
    ).first()


def create_slot(
    *,
    practitioner: Practitioner,
    service: Service,
    start_at: datetime,
    end_at: datetime | None = None,
    actor: Actor,
) -> Slot:
    """Open a new slot (end defaults to the service's duration) and start filling it."""
    now = now_utc()
    start = _aware_utc(start_at, "start_at")
    tz_name = practitioner.location.timezone
    refuse_skipped_wall_time(start_at, tz_name)
    if end_at is not None and end_at.tzinfo is not None:
        refuse_skipped_wall_time(end_at, tz_name)
    try:
        end = (
            _aware_utc(end_at, "end_at")
            if end_at is not None
            else start + timedelta(minutes=service.duration_minutes)
        )
    except OverflowError:  # a start at the very end of the calendar
        raise DomainError("That slot ends out of range.", code="invalid_slot_range") from None
    if not practitioner.active:
        raise DomainError("That practitioner is not active.", code="inactive_practitioner")
    if not service.active:
        raise DomainError("That service is no longer offered.", code="inactive_service")
    if start < now:
        raise DomainError("A slot must start in the future.", code="slot_in_past")
    if end <= start or end - start > MAX_SLOT_LENGTH:
        raise DomainError(
            "end_at must be after start_at and at most 12 hours later.", code="invalid_slot_range"
        )
    if start > now + MAX_SLOT_HORIZON:
        raise DomainError("A slot may start at most two years ahead.", code="slot_too_far_ahead")
    # Serialise slot creation per practitioner so two concurrent requests cannot both pass
    # the overlap check (the lock lasts until the request commits, milliseconds later).
    db.session.execute(
        sa.select(Practitioner.id).where(Practitioner.id == practitioner.id).with_for_update()
    )
    clash = overlapping_slot(practitioner.id, start, end)
    if clash is not None:
        raise Conflict(
            "The practitioner already has a slot at that time.",
            code="slot_overlap",
            details={"slot_id": clash.id},
        )
    slot = Slot(
        location_id=practitioner.location_id,
        practitioner_id=practitioner.id,
        service_id=service.id,
        start_at=start,
        end_at=end,
        status=SlotStatus.OPEN,
        opened_at=now,
    )
    db.session.add(slot)
    db.session.flush()
    audit.record(
        actor,
        Action.SLOT_CREATED,
        slot,
        after=audit.snapshot(
            slot, "location_id", "practitioner_id", "service_id", "start_at", "end_at", "status"
        ),
    )
    on_slot_opened(slot, actor, now)
    return slot
