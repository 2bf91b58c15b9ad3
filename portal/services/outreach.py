"""The manual outreach queue: what staff must do when no channel reached a patient."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert

from portal.db import db
from portal.models import Notification, OutreachTask
from portal.models.enums import OutreachPriority
from portal.services.settings import settings


def open_outreach_task(notification: Notification, now: datetime) -> None:
    """Queue a high-priority call for staff about ``notification`` (once per message)."""
    db.session.execute(
        insert(OutreachTask)
        .values(
            patient_id=notification.patient_id,
            notification_id=notification.id,
            offer_id=notification.offer_id,
            appointment_id=notification.appointment_id,
            reason=f"No channel reached the patient about: {notification.purpose.value}",
            priority=OutreachPriority.HIGH,
            deadline_at=now + timedelta(minutes=settings().outreach_deadline_minutes),
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[OutreachTask.notification_id])
    )
