"""Rows the staff-operations tests need beside ``tests/factories``: tasks, flags, offers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from portal.db import db, now_utc
from portal.models import Notification, OutreachTask, PatientFlag, Slot
from portal.models.enums import FlagKind, NotificationStatus, Purpose
from tests import factories as f


def offer_task(
    *, slot: Slot | None = None, deadline: datetime | None = None, **kw: Any
) -> OutreachTask:
    """An open outreach task about a pending offer (its message exhausted every channel)."""
    slot = slot or f.slot(start_at=(now_utc() + timedelta(days=1)).replace(second=0, microsecond=0))
    entry = f.waitlist_entry(patient=kw.pop("patient", None) or f.patient(), slot=slot)
    offer = f.offer(slot=slot, entry=entry, window_expires_at=now_utc() + timedelta(minutes=40))
    notification = Notification(
        patient_id=entry.patient_id,
        purpose=Purpose.OFFER,
        status=NotificationStatus.EXHAUSTED,
        dedupe_key=f"offer:{offer.id}",
        offer_id=offer.id,
    )
    db.session.add(notification)
    db.session.flush()
    task = OutreachTask(
        patient_id=entry.patient_id,
        notification_id=notification.id,
        offer_id=offer.id,
        reason="No channel reached the patient about: offer",
        deadline_at=deadline or now_utc() + timedelta(hours=1),
        **kw,
    )
    db.session.add(task)
    db.session.flush()
    return task


def message_task(*, purpose: Purpose = Purpose.CANCELLATION, **kw: Any) -> OutreachTask:
    """An open task about a message that asks nothing back (a cancellation notice)."""
    slot = f.slot()
    appointment = f.appointment(slot=slot, patient=kw.pop("patient", None) or f.patient())
    notification = Notification(
        patient_id=appointment.patient_id,
        purpose=purpose,
        status=NotificationStatus.EXHAUSTED,
        dedupe_key=f"{purpose.value}:{appointment.id}",
        appointment_id=appointment.id,
    )
    db.session.add(notification)
    db.session.flush()
    task = OutreachTask(
        patient_id=appointment.patient_id,
        notification_id=notification.id,
        appointment_id=appointment.id,
        reason="No channel reached the patient",
        deadline_at=kw.pop("deadline", None) or now_utc() + timedelta(hours=1),
        **kw,
    )
    db.session.add(task)
    db.session.flush()
    return task


def flag(kind: FlagKind = FlagKind.NO_SHOW, **kw: Any) -> PatientFlag:
    row = PatientFlag(patient_id=(kw.pop("patient", None) or f.patient()).id, kind=kind, **kw)
    db.session.add(row)
    db.session.flush()
    return row
