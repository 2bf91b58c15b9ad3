"""A first no-show's discounted rebooking (SPEC §5 tier 1).

The no-show message links to ``/r/<token>``, a signed link naming the missed
appointment. It lists open times of the same service and place (ranked like
alternatives) and books one through the one booking path, recording the discount on
the new appointment. One rebooking per no-show (a partial unique index), and only while
the patient needs no deposit or prepayment (a later no-show changes their tier).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Slot
from portal.models.enums import (
    INACTIVE_APPOINTMENT_STATUSES,
    AppointmentSource,
    AppointmentStatus,
)
from portal.services import booking
from portal.services.alternatives import Alternative, find_alternatives
from portal.services.audit import Action, Actor, record
from portal.services.errors import Conflict
from portal.services.holds import payment_required
from portal.services.settings import settings

#: How far ahead the rebooking page looks for open times.
HORIZON_HOURS = 21 * 24
CHOICES = 6


def rebooked(missed: Appointment) -> Appointment | None:
    """The live appointment already booked through this no-show's link, if any."""
    return db.session.scalar(
        sa.select(Appointment).where(
            Appointment.rebooked_from_id == missed.id,
            Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
        )
    )


def can_rebook(missed: Appointment, now: datetime | None = None) -> bool:
    """Whether the discount link still books: a no-show, and no payment needed first."""
    return (
        missed.status == AppointmentStatus.NO_SHOW and payment_required(missed.patient, now) is None
    )


def choices(missed: Appointment, now: datetime | None = None) -> list[Alternative]:
    """Open times of the missed appointment's service and place, best first."""
    return find_alternatives(
        missed.patient, missed.slot, now=now, limit=CHOICES, horizon=timedelta(hours=HORIZON_HOURS)
    )


def book_with_discount(
    missed_id: int, slot_id: int, actor: Actor, now: datetime | None = None
) -> Appointment:
    """Book ``slot_id`` for the no-show's patient with the rebooking discount recorded."""
    now = now or now_utc()
    missed = db.session.get(Appointment, missed_id)
    if missed is None or not can_rebook(missed, now):
        raise Conflict("This rebooking offer no longer applies.", code="rebook_unavailable")
    slot = db.session.get(Slot, slot_id)
    if slot is None or slot.service_id != missed.slot.service_id:
        raise Conflict("That time isn't one of the choices.", code="slot_not_bookable")
    appointment = booking.book_slot(
        slot_id, missed.patient, source=AppointmentSource.ALTERNATIVE, actor=actor, now=now
    )
    appointment.discount_percent = settings().rebook_discount_percent
    appointment.rebooked_from_id = missed.id
    db.session.flush()  # one rebooking per no-show: the unique index has the last word
    record(
        actor,
        Action.APPOINTMENT_DISCOUNTED,
        appointment,
        after={"discount_percent": appointment.discount_percent, "rebooked_from": missed.id},
    )
    return appointment
