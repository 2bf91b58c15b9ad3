"""A patient's no-show tier: the one place that decides it (SPEC §5).

The tier follows the patient's no-shows in the last ``no_show_window_months`` months
(a setting, default 6): none → ``none``, one → ``discount`` (a kind message with a
rebooking discount), two → ``deposit`` (a deposit to book again), three or more →
``prepayment`` (prepay, and a flag for staff review). A staff-set requirement on the
patient (``deposit_required`` / ``prepayment_required``) raises the tier to at least
that. ``holds.payment_required`` reads it to decide whether a booking must be paid for.
"""

from __future__ import annotations

from datetime import datetime

import arrow
import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Patient
from portal.models.enums import AppointmentStatus, NoShowTier
from portal.services.settings import settings

_ORDER = (NoShowTier.NONE, NoShowTier.DISCOUNT, NoShowTier.DEPOSIT, NoShowTier.PREPAYMENT)


def window_start(now: datetime) -> datetime:
    """The earliest no-show that still counts: ``no_show_window_months`` before ``now``."""
    return arrow.get(now).shift(months=-settings().no_show_window_months).datetime


def no_show_count(patient_id: int, now: datetime | None = None) -> int:
    """The patient's no-shows from ``window_start`` (inclusive) up to ``now``."""
    now = now or now_utc()
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Appointment)
        .where(
            Appointment.patient_id == patient_id,
            Appointment.status == AppointmentStatus.NO_SHOW,
            Appointment.no_show_at >= window_start(now),
            Appointment.no_show_at <= now,
        )
    )


def tier_for_count(count: int) -> NoShowTier:
    """The tier that ``count`` no-shows in the window earn."""
    return _ORDER[min(max(count, 0), len(_ORDER) - 1)]


def patient_tier(patient: Patient, now: datetime | None = None) -> NoShowTier:
    """The patient's tier now: by recent no-shows, raised by any staff-set requirement."""
    tier = tier_for_count(no_show_count(patient.id, now))
    if patient.prepayment_required:
        return NoShowTier.PREPAYMENT
    if patient.deposit_required and _ORDER.index(tier) < _ORDER.index(NoShowTier.DEPOSIT):
        return NoShowTier.DEPOSIT
    return tier
