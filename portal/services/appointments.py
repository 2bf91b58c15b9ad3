"""Appointment state changes outside booking: check-in, completion and cancellation.

Check-in and completion are conditional updates on the appointment's status, so they
cannot overwrite a no-show the sweep marked a moment earlier (nor the reverse).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment
from portal.models.enums import INACTIVE_APPOINTMENT_STATUSES, AppointmentStatus, Purpose
from portal.services import presentation
from portal.services.audit import Action, Actor, record, snapshot
from portal.services.errors import Conflict
from portal.services.notify import queue_notification
from portal.services.reminders import cancel_reminders

#: Statuses of an appointment still waiting for its patient to arrive.
AWAITING_ARRIVAL = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
CHECKABLE = AWAITING_ARRIVAL


def _move(
    appointment: Appointment,
    to: AppointmentStatus,
    allowed: tuple[AppointmentStatus, ...],
    **values,
) -> bool:
    """Move the appointment to ``to`` if it is still in ``allowed``; reload it either way."""
    moved = db.session.execute(
        sa.update(Appointment)
        .where(Appointment.id == appointment.id, Appointment.status.in_(allowed))
        .values(status=to, updated_at=now_utc(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(appointment)
    return moved == 1


def _refusal(appointment: Appointment, doing: str) -> Conflict:
    if appointment.status == AppointmentStatus.NO_SHOW:
        when = presentation.when(appointment.no_show_at, appointment.slot.location.timezone)
        return Conflict(
            f"This appointment was marked a no-show at {when}, so it cannot be {doing}.",
            code="not_checkable",
        )
    return Conflict(
        f"An appointment that is {appointment.status.value.replace('_', ' ')} cannot be {doing}.",
        code="not_checkable",
    )


def check_in(appointment: Appointment, actor: Actor, now: datetime | None = None) -> Appointment:
    """Mark the patient arrived; checking in twice is harmless, a cancelled one is refused."""
    now = now or now_utc()
    before = appointment.status
    if not _move(appointment, AppointmentStatus.CHECKED_IN, CHECKABLE, checked_in_at=now):
        if appointment.status in (AppointmentStatus.CHECKED_IN, AppointmentStatus.COMPLETED):
            return appointment
        raise _refusal(appointment, "checked in")
    record(actor, Action.APPOINTMENT_CHECKED_IN, appointment, before={"status": before})
    return appointment


def complete(appointment: Appointment, actor: Actor, now: datetime | None = None) -> Appointment:
    """Mark a visit done; completing twice is harmless, one never checked in is refused."""
    now = now or now_utc()
    allowed = (AppointmentStatus.CHECKED_IN,)
    if not _move(appointment, AppointmentStatus.COMPLETED, allowed, completed_at=now):
        if appointment.status == AppointmentStatus.COMPLETED:
            return appointment
        if appointment.status in AWAITING_ARRIVAL:
            raise Conflict(
                "Check the patient in before completing the visit.", code="not_checkable"
            )
        raise _refusal(appointment, "completed")
    record(actor, Action.APPOINTMENT_COMPLETED, appointment, before={"status": "checked_in"})
    return appointment


def active_appointment(slot_id: int) -> Appointment | None:
    """Return the slot's appointment that still occupies it, if any."""
    return db.session.scalar(
        sa.select(Appointment).where(
            Appointment.slot_id == slot_id,
            Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
        )
    )


def cancel_appointment(
    appointment: Appointment,
    actor: Actor,
    *,
    reason: str | None,
    now: datetime | None = None,
    context: dict[str, Any] | None = None,
) -> Appointment:
    """Cancel the appointment and tell the patient (with ``reason`` when staff gave one).

    The patient's calendar entry is superseded: ``calendar_sequence`` goes up and the
    message carries a ``METHOD:CANCEL`` event. Its reminders still waiting are cancelled
    (every cancellation path comes through here). The caller holds the slot's row lock and
    decides what becomes of the slot. ``context`` adds to the message (who cancelled,
    the fee).
    """
    now = now or now_utc()
    before = snapshot(appointment, "status")
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = now
    appointment.cancel_reason = (reason or "")[:200] or None
    appointment.calendar_sequence += 1
    record(
        actor, Action.APPOINTMENT_CANCELLED, appointment, before=before, after={"reason": reason}
    )
    cancel_reminders(appointment, now, "the appointment was cancelled", actor=actor)
    message = ({"reason": reason} if reason else {}) | (context or {})
    queue_notification(
        appointment.patient,
        Purpose.CANCELLATION,
        f"cancellation:{appointment.id}",
        appointment_id=appointment.id,
        context=message or None,
        now=now,
    )
    return appointment


def confirm_appointment(
    appointment: Appointment, actor: Actor, now: datetime | None = None
) -> bool:
    """Mark the appointment confirmed by the patient; False when it already was.

    Only a booked (or already confirmed) appointment can be confirmed; anything else
    (cancelled, past, checked in) is refused with ``not_confirmable``.
    """
    now = now or now_utc()
    if appointment.status == AppointmentStatus.CONFIRMED:
        return False
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict(
            f"An appointment that is {appointment.status.value} cannot be confirmed.",
            code="not_confirmable",
        )
    if appointment.slot.start_at <= now:
        raise Conflict("This appointment has already begun.", code="not_confirmable")
    appointment.status = AppointmentStatus.CONFIRMED
    appointment.confirmed_at = now
    record(
        actor,
        Action.APPOINTMENT_CONFIRMED,
        appointment,
        before={"status": AppointmentStatus.BOOKED},
        after={"status": AppointmentStatus.CONFIRMED},
    )
    return True
