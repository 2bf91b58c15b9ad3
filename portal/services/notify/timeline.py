"""What staff see about a patient: search, and the full timeline of their messages.

The timeline lists appointments, offers and every notification with each channel
attempt (status, times, failure reason, fallback link) and the receipts behind it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from portal.db import db
from portal.models import (
    Appointment,
    DeliveryEvent,
    Notification,
    NotificationAttempt,
    Offer,
    OutreachTask,
    Patient,
    PatientFlag,
    Slot,
    WaitlistEntry,
)

SEARCH_MAX_CHARS = 100
PAGE_SIZE = 25


def patient_query(text: str) -> sa.Select[tuple[Patient]]:
    """Patients whose name, email or phone contains ``text``, by name (all when empty)."""
    text = text.replace("\x00", "").strip()[:SEARCH_MAX_CHARS]
    query = sa.select(Patient).order_by(Patient.name, Patient.id)
    if not text:
        return query
    matches = [
        Patient.name.icontains(text, autoescape=True),
        Patient.email.icontains(text, autoescape=True),
        Patient.phone_raw.icontains(text, autoescape=True),
    ]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 3:
        matches.append(Patient.phone_e164.contains(digits, autoescape=True))
    return query.where(sa.or_(*matches))


def open_flags_by_patient(patient_ids: list[int]) -> dict[int, list[PatientFlag]]:
    """Return each patient's unresolved flags."""
    flags: dict[int, list[PatientFlag]] = defaultdict(list)
    if patient_ids:
        for flag in db.session.scalars(
            sa.select(PatientFlag)
            .where(PatientFlag.patient_id.in_(patient_ids), PatientFlag.resolved_at.is_(None))
            .order_by(PatientFlag.created_at)
        ):
            flags[flag.patient_id].append(flag)
    return flags


@dataclass
class AttemptRow:
    attempt: NotificationAttempt
    events: list[DeliveryEvent] = field(default_factory=list)


@dataclass
class NotificationRow:
    notification: Notification
    attempts: list[AttemptRow]
    task: OutreachTask | None


@dataclass
class Timeline:
    patient: Patient
    flags: list[PatientFlag]
    entries: list[WaitlistEntry]
    appointments: list[Appointment]
    offers: list[Offer]
    notifications: list[NotificationRow]


def patient_timeline(patient: Patient, limit: int = 100) -> Timeline:
    """Return everything the patient page shows, newest first."""
    notifications = list(
        db.session.scalars(
            sa.select(Notification)
            .where(Notification.patient_id == patient.id)
            .options(selectinload(Notification.attempts))
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )
    attempt_ids = [a.id for n in notifications for a in n.attempts]
    events: dict[int, list[DeliveryEvent]] = defaultdict(list)
    if attempt_ids:
        for event in db.session.scalars(
            sa.select(DeliveryEvent)
            .where(DeliveryEvent.attempt_id.in_(attempt_ids))
            .order_by(DeliveryEvent.received_at, DeliveryEvent.id)
        ):
            events[event.attempt_id or 0].append(event)
    tasks = {
        t.notification_id: t
        for t in db.session.scalars(
            sa.select(OutreachTask).where(
                OutreachTask.notification_id.in_([n.id for n in notifications] or [0])
            )
        )
    }
    return Timeline(
        patient=patient,
        flags=list(
            db.session.scalars(
                sa.select(PatientFlag)
                .where(PatientFlag.patient_id == patient.id)
                .order_by(PatientFlag.created_at.desc())
            )
        ),
        entries=list(
            db.session.scalars(
                sa.select(WaitlistEntry)
                .where(WaitlistEntry.patient_id == patient.id)
                .order_by(WaitlistEntry.created_at.desc())
            )
        ),
        appointments=list(
            db.session.scalars(
                sa.select(Appointment)
                .join(Slot, Slot.id == Appointment.slot_id)
                .where(Appointment.patient_id == patient.id)
                .order_by(Slot.start_at.desc())
                .limit(limit)
            )
        ),
        offers=list(
            db.session.scalars(
                sa.select(Offer)
                .where(Offer.patient_id == patient.id)
                .order_by(Offer.created_at.desc())
                .limit(limit)
            )
        ),
        notifications=[
            NotificationRow(
                notification=n,
                attempts=[AttemptRow(a, events.get(a.id, [])) for a in n.attempts],
                task=tasks.get(n.id),
            )
            for n in notifications
        ],
    )
