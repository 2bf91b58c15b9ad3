"""Telling patients things: the transactional outbox of notifications (SPEC §4).

``queue_notification`` writes a ``Notification`` and its first ``NotificationAttempt``
in the caller's transaction; ``jobs.notify.send_attempt`` sends it after commit. The
chain of channels is SMS → email → voice → manual outreach (see ``chain``); receipts
(``receipts``), inbound texts (``inbound``) and calls (``voice``) drive it from the
Twilio webhooks, and ``jobs.notify.dispatch_due`` resolves whatever a lost job, a
crashed worker or a silent provider left behind (``sending``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.db import db, now_utc
from portal.models import Notification, NotificationAttempt, Patient
from portal.models.enums import AttemptStatus, NotificationStatus, Purpose
from portal.services.notify.chain import plan_next
from portal.services.notify.policy import CHAIN, cap_reason

log = logging.getLogger(__name__)

__all__ = ["CHAIN", "attempts_for", "queue_notification"]


def queue_notification(
    patient: Patient,
    purpose: Purpose,
    dedupe_key: str,
    *,
    offer_id: int | None = None,
    appointment_id: int | None = None,
    context: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Notification | None:
    """Write a notification and its first attempt; None if this event was already queued.

    A patient over a frequency cap for ``purpose`` (``policy.cap_reason``) gets no
    message: the notification is kept, cancelled, with a skipped attempt saying why
    (never silently dropped).
    """
    now = now or now_utc()
    reason = cap_reason(patient, purpose, now)
    capped = reason is not None
    notification_id = db.session.scalar(
        insert(Notification)
        .values(
            patient_id=patient.id,
            purpose=purpose,
            status=NotificationStatus.CANCELLED if capped else NotificationStatus.PENDING,
            dedupe_key=dedupe_key,
            offer_id=offer_id,
            appointment_id=appointment_id,
            context=context or {},
            completed_at=now if capped else None,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
        .returning(Notification.id)
    )
    if notification_id is None:
        return None
    notification = db.session.get(Notification, notification_id)
    if reason is not None:
        db.session.add(
            NotificationAttempt(
                notification_id=notification_id,
                patient_id=patient.id,
                purpose=purpose,
                channel=CHAIN[0],
                status=AttemptStatus.SKIPPED,
                failure_reason=reason,
                not_before=now,
                failed_at=now,
            )
        )
        db.session.flush()
        log.info("notification %s not sent: %s", notification_id, reason)
        return notification
    plan_next(notification, None, now)
    return notification


def attempts_for(notification_id: int) -> list[NotificationAttempt]:
    """Return a notification's attempts in the order they were made."""
    return list(
        db.session.scalars(
            sa.select(NotificationAttempt)
            .where(NotificationAttempt.notification_id == notification_id)
            .order_by(NotificationAttempt.id)
        )
    )
