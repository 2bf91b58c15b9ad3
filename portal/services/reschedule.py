"""Moving an appointment to another open slot of the same service, atomically.

One transaction: both slot rows are locked in id order (so two moves crossing each
other cannot deadlock), the new slot is booked through ``booking.book_slot`` (the one
booking path: conditional update, clash check, offers withdrawn, the patient told
with an updated calendar entry, reminders replanned) and the old slot is released
and offered to the waitlist at once. A lost race rolls the whole move back.

Leaving the old time may cost a fee: ``fee_for_leaving_old_time`` is the one hook.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Patient, Slot, WaitlistEntry
from portal.models.enums import AppointmentStatus, ChargeKind
from portal.services import booking, cancellation, ledger
from portal.services.alternatives import Alternative, find_alternatives
from portal.services.audit import Actor
from portal.services.cancellation_policy import policy_for
from portal.services.errors import Conflict, DomainError, NotFound
from portal.services.presentation import money, when
from portal.services.release import release_slot
from portal.services.settings import settings

MOVABLE = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
#: Notice that makes a move free when the category has no cancellation policy row.


class NotReschedulable(Conflict):
    default_code = "not_reschedulable"
    default_message = "This appointment can no longer be moved."


class RescheduleFeeRequired(Conflict):
    """Moving costs a fee the caller has not accepted (or the quote changed)."""

    default_code = "reschedule_fee_required"

    def __init__(self, fee_cents: int) -> None:
        super().__init__(
            f"Moving this appointment now has a late-change fee of {money(fee_cents)}.",
            details={"fee_cents": fee_cents},
        )
        self.fee_cents = fee_cents


def notice_hours(category: str) -> int:
    """The category's notice hours (its cancellation policy)."""
    return policy_for(category).notice_hours


def fee_for_leaving_old_time(appointment: Appointment, now: datetime) -> int:
    """The fee (cents) for leaving the appointment's current time: 0 unless a policy says so.

    With ``reschedule_free_with_notice`` on (the default) a move made at least the
    category's notice hours ahead is free. Otherwise the cancellation policy's fee for
    this much notice applies (``late_change_fee_cents``).
    """
    slot = appointment.slot
    notice = slot.start_at - now
    if settings().reschedule_free_with_notice and notice >= timedelta(
        hours=notice_hours(slot.service.category)
    ):
        return 0
    return late_change_fee_cents(appointment, now)


def late_change_fee_cents(appointment: Appointment, now: datetime) -> int:
    """The cancellation policy's fee for giving up this time now (cents): the same quote
    a cancellation would get (grace, notice, late fee or full price)."""
    return cancellation.quote(appointment, now).fee_cents


def choices(
    appointment: Appointment, now: datetime | None = None, *, limit: int | None = None
) -> list[Alternative]:
    """Open slots of the same service the appointment could move to, best first.

    Ranked by the alternatives scoring (same practitioner, same day, hours away, the
    patient's availability and preferred hour) in the patient's own zone.
    """
    current = settings()
    entry = (
        db.session.get(WaitlistEntry, appointment.waitlist_entry_id)
        if appointment.waitlist_entry_id
        else None
    )
    return find_alternatives(
        appointment.patient,
        appointment.slot,
        entry,
        now=now,
        limit=limit or current.reschedule_choices,
        horizon=timedelta(days=current.reschedule_horizon_days),
        ignoring_appointment_id=appointment.id,
    )


def is_choice(appointment: Appointment, slot_id: int, now: datetime | None = None) -> bool:
    """Whether ``slot_id`` is among the times the appointment may move to now."""
    return any(a.slot.id == slot_id for a in choices(appointment, now, limit=200))


def check_movable(appointment: Appointment, now: datetime) -> None:
    """Refuse an appointment that cannot move (not active, or already begun)."""
    if appointment.status not in MOVABLE:
        raise NotReschedulable(
            f"An appointment that is {appointment.status.value} cannot be moved."
        )
    if appointment.slot.start_at <= now:
        raise NotReschedulable("This appointment has already begun.")


def reschedule_appointment(
    appointment_id: int,
    new_slot_id: int,
    actor: Actor,
    *,
    accepted_fee_cents: int | None = None,
    waive_fee: bool = False,
    now: datetime | None = None,
) -> Appointment:
    """Move the appointment into ``new_slot_id`` and reopen its old slot (flushes).

    Raises ``booking.SlotTaken`` (and the other booking conflicts) when the new slot is
    not bookable, ``NotReschedulable``, or ``RescheduleFeeRequired`` when moving costs a
    fee other than ``accepted_fee_cents``. ``waive_fee``: the clinic moves the patient
    (e.g. a closure), so leaving the old time costs nothing.
    """
    now = now or now_utc()
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound("No such appointment.", code="unknown_appointment")
    old_slot_id = appointment.slot_id
    if new_slot_id == old_slot_id:
        raise DomainError("The appointment is already at that time.", code="same_slot")
    locked = {
        s.id: s
        for s in db.session.scalars(
            sa.select(Slot)
            .where(Slot.id.in_([old_slot_id, new_slot_id]))
            .order_by(Slot.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    if new_slot_id not in locked:
        raise DomainError(f"There is no slot with id {new_slot_id}.", code="unknown_slot")
    db.session.refresh(appointment)  # read after the lock: a concurrent cancel shows
    if appointment.slot_id != old_slot_id:
        raise NotReschedulable("This appointment was just moved.")
    check_movable(appointment, now)
    old_slot, new_slot = locked[old_slot_id], locked[new_slot_id]
    if new_slot.service_id != old_slot.service_id:
        raise DomainError("Pick a time for the same service.", code="service_mismatch")
    if new_slot.start_at <= now:
        raise booking.SlotNotBookable("That time has already begun.")
    fee = 0 if waive_fee else fee_for_leaving_old_time(appointment, now)
    if fee and accepted_fee_cents != fee:
        raise RescheduleFeeRequired(fee)
    patient = db.session.get(Patient, appointment.patient_id)
    old_start = old_slot.start_at
    booking.book_slot(
        new_slot_id, patient, source=appointment.source, actor=actor, now=now, moving=appointment
    )
    release_slot(old_slot_id, actor, reason="rescheduled", now=now)
    if fee:
        _charge_fee(appointment, fee, old_start, actor)
    return appointment


def _charge_fee(appointment: Appointment, fee: int, old_start: datetime, actor: Actor) -> None:
    """The late-change fee as a ledger charge, owed (one per move: a double submit once)."""
    ledger.open_charge(
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
        kind=ChargeKind.CANCELLATION_FEE,
        amount_cents=fee,
        key=f"reschedule-fee:{appointment.id}:{appointment.calendar_sequence}",
        description=f"Late change from {when(old_start, appointment.slot.location.timezone)}",
        actor=actor,
    )
