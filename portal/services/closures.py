"""Closures: holidays and reduced hours, per location or at every location (SPEC §2, §7).

Closed time is never offered: matching and alternatives skip it (``matching.closure_for``,
``alternatives``). Creating a closure also withdraws the offers already out for slots
inside it — under each slot's row lock, like a booking, so an accept racing the closure
either wins first (and the booking is listed for staff) or finds the offer withdrawn —
and tells those patients the time is no longer available. Booked slots inside a closure
are listed for staff to move or cancel (``cancel_for_closure``, ``move_appointment``);
the clinic cancelling charges no fee.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.db import db, now_utc
from portal.models import Appointment, Closure, Location, Offer, Patient, Slot
from portal.models.enums import OfferStatus, Purpose, SlotStatus
from portal.services.appointments import active_appointment
from portal.services.audit import Action, Actor, record, snapshot
from portal.services.errors import Conflict, DomainError, NotFound
from portal.services.filling import lock_slot, schedule_fill
from portal.services.matching import Exclusion
from portal.services.notify import queue_notification
from portal.services.offers import update_offers
from portal.services.release import release_slot
from portal.services.reschedule import reschedule_appointment
from portal.services.timezones import local_day_bounds, zone

MAX_REASON = 200
MAX_DAYS = 366
#: A reduced-hours closure repeats on each day of its range, up to this many days.
MAX_HOURS_DAYS = 62
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
WITHDRAWN_REASON = "closure"


@dataclass
class ClosureResult:
    """What creating a closure did: its rows, the offers it withdrew, the bookings to move."""

    closures: list[Closure]
    withdrawn: int = 0
    booked: list[Slot] = field(default_factory=list)


def _ranges(
    first: date, last: date, start: time | None, end: time | None, tz: str
) -> list[tuple[datetime, datetime]]:
    """The closed instants in ``tz``: one range for whole days, one per day for hours."""
    if start is None or end is None:
        return [(local_day_bounds(first, tz)[0], local_day_bounds(last, tz)[1])]
    days = (last - first).days + 1
    return [
        (
            datetime.combine(first + timedelta(days=n), start, tzinfo=zone(tz)),
            datetime.combine(first + timedelta(days=n), end, tzinfo=zone(tz)),
        )
        for n in range(days)
    ]


def _check(first: date, last: date, start: time | None, end: time | None, reason: str) -> None:
    if not (FIRST_DAY <= first <= LAST_DAY and FIRST_DAY <= last <= LAST_DAY):
        raise DomainError("Choose dates between 2000 and 2100.", code="invalid_closure_dates")
    if last < first:
        raise DomainError(
            "The last day must not be before the first.", code="invalid_closure_dates"
        )
    if (last - first).days >= MAX_DAYS:
        raise DomainError("A closure can span at most a year.", code="invalid_closure_dates")
    if (start is None) != (end is None):
        raise DomainError("Give both the closing and the reopening time.", code="invalid_hours")
    if start is not None and end is not None:
        if end <= start:
            raise DomainError("The clinic must reopen after it closes.", code="invalid_hours")
        if (last - first).days >= MAX_HOURS_DAYS:
            raise DomainError(
                f"Reduced hours can repeat on at most {MAX_HOURS_DAYS} days.",
                code="invalid_closure_dates",
            )
    if len(reason) > MAX_REASON:
        raise DomainError(f"Keep the reason under {MAX_REASON} characters.", code="invalid_reason")


def create_closure(
    *,
    location: Location | None,
    first_day: date,
    last_day: date | None = None,
    start_time: time | None = None,
    end_time: time | None = None,
    reason: str = "",
    actor: Actor,
    now: datetime | None = None,
) -> ClosureResult:
    """Close one location (or each location, in its own zone) and withdraw offers inside.

    Whole days (``first_day``..``last_day``) or, with ``start_time``/``end_time``, the
    same local hours on each of those days (reduced hours).
    """
    now = now or now_utc()
    last_day = last_day or first_day
    reason = " ".join(reason.split())
    _check(first_day, last_day, start_time, end_time, reason)
    locations = [location] if location else list(db.session.scalars(sa.select(Location)))
    if not locations:
        raise DomainError("Add a location first.", code="no_locations")
    result = ClosureResult([])
    for place in sorted(locations, key=lambda loc: loc.id):
        for start_at, end_at in _ranges(first_day, last_day, start_time, end_time, place.timezone):
            if end_at <= now:
                continue
            closure = Closure(location_id=place.id, start_at=start_at, end_at=end_at, reason=reason)
            db.session.add(closure)
            db.session.flush()
            record(actor, Action.CLOSURE_CREATED, closure, after=_snapshot(closure))
            result.closures.append(closure)
    if not result.closures:
        raise DomainError("That time has already passed.", code="closure_in_past")
    for closure in result.closures:
        result.withdrawn += withdraw_offers_inside(closure, actor, now)
    result.booked = [s for c in result.closures for s in slots_inside(c, (SlotStatus.BOOKED,))]
    return result


def _snapshot(closure: Closure) -> dict[str, object]:
    return snapshot(closure, "location_id", "start_at", "end_at", "reason")


def _inside(closure: Closure) -> list[sa.ColumnElement[bool]]:
    where = [Slot.start_at < closure.end_at, Slot.end_at > closure.start_at]
    if closure.location_id is not None:
        where.append(Slot.location_id == closure.location_id)
    return where


def slots_inside(closure: Closure, statuses: tuple[SlotStatus, ...]) -> list[Slot]:
    """Slots overlapping the closure in the given statuses, by start."""
    return list(
        db.session.scalars(
            sa.select(Slot)
            .where(*_inside(closure), Slot.status.in_(statuses))
            .options(joinedload(Slot.service), joinedload(Slot.practitioner))
            .order_by(Slot.start_at, Slot.id)
        )
    )


def withdraw_offers_inside(closure: Closure, actor: Actor, now: datetime) -> int:
    """Withdraw pending offers for open slots in the closure; tell each patient why."""
    slot_ids = db.session.scalars(
        sa.select(Slot.id)
        .where(*_inside(closure), Slot.status == SlotStatus.OPEN, Slot.start_at > now)
        .order_by(Slot.id)
    ).all()
    withdrawn = 0
    for slot_id in slot_ids:
        slot = lock_slot(slot_id)  # the lock every accept of these offers queues on
        if slot is None or slot.status != SlotStatus.OPEN:
            continue
        offers = update_offers(
            sa.and_(Offer.slot_id == slot_id, Offer.status == OfferStatus.PENDING),
            status=OfferStatus.WITHDRAWN,
            withdrawn_reason=WITHDRAWN_REASON,
            updated_at=now,
        )
        for offer in offers:
            record(actor, Action.OFFER_WITHDRAWN, offer, after={"reason": WITHDRAWN_REASON})
            queue_notification(
                db.session.get_one(Patient, offer.patient_id),
                Purpose.SLOT_FILLED,
                f"closure_withdrawn:{offer.id}",
                offer_id=offer.id,
                context={"closure": True},
                now=now,
            )
        withdrawn += len(offers)
        schedule_fill(slot_id)  # finds the closure and records why filling stopped
    return withdrawn


def delete_closure(closure_id: int, actor: Actor, now: datetime | None = None) -> int:
    """Reopen the time: delete the closure and ask the waitlist again for its open slots.

    Returns how many slots start filling again.
    """
    now = now or now_utc()
    closure = db.session.get(Closure, closure_id)
    if closure is None:
        raise NotFound("No such closure.", code="unknown_closure")
    record(actor, Action.CLOSURE_DELETED, closure, before=_snapshot(closure))
    stopped_by_closure = Slot.fill_exhausted_reasons.has_key(Exclusion.CLOSURE.value)
    slot_ids = db.session.scalars(
        sa.select(Slot.id).where(
            *_inside(closure),
            Slot.status == SlotStatus.OPEN,
            Slot.start_at > now,
            Slot.fill_exhausted_at.is_not(None),
            stopped_by_closure,
        )
    ).all()
    db.session.delete(closure)
    db.session.flush()
    for slot_id in slot_ids:
        db.session.execute(
            sa.update(Slot)
            .where(Slot.id == slot_id)
            .values(fill_exhausted_at=None, fill_exhausted_reasons=None, updated_at=now)
        )
        schedule_fill(slot_id)  # a closure still covering it stops it again, with why
    return len(slot_ids)


def cancel_for_closure(slot_id: int, actor: Actor, reason: str) -> Appointment:
    """Cancel the slot's booking because the clinic is closed (no fee; the patient is told)."""
    appointment = active_appointment(slot_id)
    if appointment is None:
        raise Conflict("This slot has no booking to cancel.", code="slot_not_booked")
    release_slot(slot_id, actor, reason=reason, only_booked=True)
    return appointment


def move_appointment(
    appointment_id: int, new_slot_id: int, actor: Actor, now: datetime | None = None
) -> Appointment:
    """Move a booking out of a closure: the clinic's doing, so no fee for leaving the time.

    Through ``reschedule.reschedule_appointment`` (both slots locked in id order, the new
    one booked through ``book_slot``, the old one reopened; the patient gets the moved
    confirmation with an updated calendar entry, reminders follow).
    """
    return reschedule_appointment(appointment_id, new_slot_id, actor, waive_fee=True, now=now)


def upcoming_closures(now: datetime | None = None, limit: int = 100) -> list[Closure]:
    """Closures not yet over, soonest first."""
    now = now or now_utc()
    return list(
        db.session.scalars(
            sa.select(Closure)
            .where(Closure.end_at > now)
            .options(joinedload(Closure.location))
            .order_by(Closure.start_at, Closure.id)
            .limit(limit)
        )
    )
