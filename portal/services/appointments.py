"""Appointment state changes outside booking: check-in (no-shows and cancellations next)."""

from __future__ import annotations

from datetime import datetime

from portal.db import now_utc
from portal.models import Appointment
from portal.models.enums import AppointmentStatus
from portal.services.audit import Actor, record
from portal.services.errors import Conflict

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
    record(actor, "appointment.checked_in", appointment, before={"status": before})
    return appointment
