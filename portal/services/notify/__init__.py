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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.db import db, now_utc
from portal.models import Notification, NotificationAttempt, Patient
from portal.models.enums import AttemptStatus, NotificationStatus, Purpose
from portal.services.notify.chain import enqueue_send, plan_next
from portal.services.notify.policy import CHAIN, cap_reasons

log = logging.getLogger(__name__)

__all__ = ["CHAIN", "Message", "attempts_for", "queue_notification", "queue_notifications"]


@dataclass(frozen=True)
class Message:
    """One notification to queue: for whom, its dedupe key, what it is about."""

    patient: Patient
    dedupe_key: str
    offer_id: int | None = None
    appointment_id: int | None = None
    context: dict[str, Any] | None = None


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

    A patient over a frequency cap for ``purpose`` (``policy.cap_reasons``) gets no
    message: the notification is kept, cancelled, with a skipped attempt saying why
    (never silently dropped).
    """
    message = Message(patient, dedupe_key, offer_id, appointment_id, context)
    queued = queue_notifications([message], purpose, now=now)
    return queued[0] if queued else None


def queue_notifications(
    messages: list[Message], purpose: Purpose, *, now: datetime | None = None
) -> list[Notification]:
    """``queue_notification`` for many messages in a constant number of statements.

    One query for the frequency caps, one ``INSERT … ON CONFLICT DO NOTHING RETURNING``
    for the notifications, one read of them, one flush of their first attempts (sends
    are enqueued after commit). Returns the notifications written, in id order; those
    already queued (same dedupe key) are left out.
    """
    if not messages:
        return []
    now = now or now_utc()
    reasons = cap_reasons([m.patient for m in messages], purpose, now)
    rows = []
    for m in messages:
        capped = reasons[m.patient.id] is not None
        rows.append(
            {
                "patient_id": m.patient.id,
                "purpose": purpose,
                "status": NotificationStatus.CANCELLED if capped else NotificationStatus.PENDING,
                "dedupe_key": m.dedupe_key,
                "offer_id": m.offer_id,
                "appointment_id": m.appointment_id,
                "context": m.context or {},
                "completed_at": now if capped else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    inserted = db.session.scalars(
        insert(Notification)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
        .returning(Notification.id)
    ).all()
    if not inserted:
        return []
    notifications = list(
        db.session.scalars(
            sa.select(Notification).where(Notification.id.in_(inserted)).order_by(Notification.id)
        )
    )
    to_send: list[NotificationAttempt] = []
    for notification in notifications:
        reason = reasons[notification.patient_id]
        if reason is None:
            plan_next(notification, None, now, fresh=True, batch=to_send)
            continue
        db.session.add(
            NotificationAttempt(
                notification_id=notification.id,
                patient_id=notification.patient_id,
                purpose=purpose,
                channel=CHAIN[0],
                status=AttemptStatus.SKIPPED,
                failure_reason=reason,
                not_before=now,
                failed_at=now,
            )
        )
        log.info("notification %s not sent: %s", notification.id, reason)
    db.session.flush()  # every first attempt in one INSERT
    for attempt in to_send:
        enqueue_send(attempt, now)
    return notifications


def attempts_for(notification_id: int) -> list[NotificationAttempt]:
    """Return a notification's attempts in the order they were made."""
    return list(
        db.session.scalars(
            sa.select(NotificationAttempt)
            .where(NotificationAttempt.notification_id == notification_id)
            .order_by(NotificationAttempt.id)
        )
    )
