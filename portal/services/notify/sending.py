"""Sending one attempt: claim the row, render, hand it to the channel's backend.

The claim (``queued`` → ``sending``) is committed before the provider is called, so a
retried or duplicated job finds nothing to do. With the outbox backend the message row
and the ``sent`` status commit together, so there is no crash window at all.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Notification, NotificationAttempt, Offer, OutreachTask
from portal.models.enums import (
    AttemptStatus,
    Channel,
    NotificationStatus,
    OfferStatus,
    Purpose,
)
from portal.services.notify.messages import render_message
from portal.services.notify.outbox import OutboxBackend

log = logging.getLogger(__name__)

RECEIPT_TIMEOUT = timedelta(minutes=10)
MANUAL_DEADLINE = timedelta(hours=1)


def still_relevant(notification: Notification) -> bool:
    """An offer message is pointless once the offer is no longer pending."""
    if notification.purpose == Purpose.OFFER and notification.offer_id:
        offer = db.session.get(Offer, notification.offer_id)
        return offer is not None and offer.status == OfferStatus.PENDING
    return True


def claim(attempt_id: int, now: datetime) -> NotificationAttempt | None:
    """Move a due attempt from queued to sending; None if someone else has it."""
    claimed = db.session.scalar(
        sa.update(NotificationAttempt)
        .where(
            NotificationAttempt.id == attempt_id,
            NotificationAttempt.status == AttemptStatus.QUEUED,
            NotificationAttempt.not_before <= now,
        )
        .values(status=AttemptStatus.SENDING, claimed_at=now, updated_at=now)
        .returning(NotificationAttempt.id)
    )
    return db.session.get(NotificationAttempt, claimed) if claimed else None


def address_for(attempt: NotificationAttempt) -> str:
    patient = attempt.notification.patient
    if attempt.channel == Channel.EMAIL:
        return patient.email or ""
    return patient.phone_e164 or ""


def send_attempt(attempt_id: int, now: datetime | None = None) -> AttemptStatus | None:
    """Send one attempt (commits); returns its new status, or None if there was nothing to do."""
    now = now or now_utc()
    attempt = claim(attempt_id, now)
    if attempt is None:
        db.session.rollback()
        return None
    notification = attempt.notification
    if not still_relevant(notification):
        attempt.status = AttemptStatus.CANCELED
        attempt.failure_reason = "no longer relevant"
        notification.status = NotificationStatus.CANCELLED
        notification.completed_at = now
        db.session.commit()
        return attempt.status
    if attempt.channel == Channel.MANUAL:
        _raise_outreach_task(attempt, now)
        db.session.commit()
        return attempt.status
    message = render_message(notification, attempt.channel)
    attempt.fallback_link = message.links[0] if message.links else None
    attempt.provider = OutboxBackend.name
    attempt.provider_id = OutboxBackend().send(attempt, address_for(attempt), message)
    attempt.status = AttemptStatus.SENT
    attempt.sent_at = now
    attempt.receipt_deadline_at = now + RECEIPT_TIMEOUT
    db.session.commit()
    log.info("attempt %s sent via %s (%s)", attempt.id, attempt.provider, attempt.channel.value)
    return attempt.status


def _raise_outreach_task(attempt: NotificationAttempt, now: datetime) -> None:
    notification = attempt.notification
    db.session.add(
        OutreachTask(
            patient_id=notification.patient_id,
            notification_id=notification.id,
            offer_id=notification.offer_id,
            appointment_id=notification.appointment_id,
            reason=f"Could not reach the patient about: {notification.purpose.value}",
            deadline_at=now + MANUAL_DEADLINE,
        )
    )
    attempt.status = AttemptStatus.SENT
    attempt.sent_at = now
    notification.status = NotificationStatus.EXHAUSTED
    notification.completed_at = now


def due_attempt_ids(now: datetime, limit: int = 500) -> list[int]:
    """Queued attempts that are due (their enqueue may have been lost)."""
    return list(
        db.session.scalars(
            sa.select(NotificationAttempt.id)
            .where(
                NotificationAttempt.status == AttemptStatus.QUEUED,
                NotificationAttempt.not_before <= now,
            )
            .order_by(NotificationAttempt.not_before)
            .limit(limit)
        )
    )
