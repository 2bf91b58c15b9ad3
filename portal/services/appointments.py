"""Appointment state changes outside booking: check-in and cancellation."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment
from portal.models.enums import INACTIVE_APPOINTMENT_STATUSES, AppointmentStatus, Purpose
from portal.services.audit import Action, Actor, record, snapshot
from portal.services.errors import Conflict
from portal.services.notify import queue_notification
from portal.services.reminders import cancel_reminders

CHECKABLE = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)


def check_in(appointment: Appointment, actor: Actor, now: datetime | None = None) -> Appointment:
    """Mark the patient arrived; checking in twice is harmless, a cancelled one is refused."""
    if appointment.status == AppointmentStatus.CHECKED_IN:
        return appointment
    if appointment.status not in CHECKABLE:
        raise Conflict(
            f"An appointment that is {appointment.status.value} cannot be checked in.",
            code="not_checkable",
        )
    before = appointment.status
    appointment.status = AppointmentStatus.CHECKED_IN
    appointment.checked_in_at = now or now_utc()
    record(actor, Action.APPOINTMENT_CHECKED_IN, appointment, before={"status": before})
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
) -> Appointment:
    """Cancel the appointment and tell the patient (with ``reason`` when staff gave one).

    The patient's calendar entry is superseded: ``calendar_sequence`` goes up and the
    message carries a ``METHOD:CANCEL`` event. Its reminders still waiting are cancelled
    (every cancellation path comes through here). The caller holds the slot's row lock and
    decides what becomes of the slot.
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
    queue_notification(
        appointment.patient,
        Purpose.CANCELLATION,
        f"cancellation:{appointment.id}",
        appointment_id=appointment.id,
        context={"reason": reason} if reason else None,
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
