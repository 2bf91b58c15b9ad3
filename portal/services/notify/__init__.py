"""Telling patients things: the transactional outbox of notifications (SPEC §4).

``queue_notification`` writes a ``Notification`` and its first ``NotificationAttempt`` in
the caller's transaction; ``jobs.notify.send_attempt`` sends it after commit. The chain
of channels is SMS → email → voice → manual outreach.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.db import db, now_utc
from portal.models import Notification, NotificationAttempt, Patient
from portal.models.enums import AttemptStatus, Channel, Purpose
from portal.queue import enqueue_after_commit

log = logging.getLogger(__name__)

CHAIN: tuple[Channel, ...] = (Channel.SMS, Channel.EMAIL, Channel.VOICE, Channel.MANUAL)


def unusable_reason(channel: Channel, patient: Patient) -> str | None:
    """Why ``channel`` cannot reach ``patient`` (None when it can)."""
    if channel == Channel.SMS:
        if not patient.phone_e164:
            return "no valid phone number"
        if patient.sms_opt_out:
            return "patient opted out of SMS"
    elif channel == Channel.EMAIL:
        if not patient.email:
            return "no email address"
    elif channel == Channel.VOICE and not patient.phone_e164:
        return "no valid phone number"
    return None


def next_channel(
    patient: Patient, after: Channel | None = None
) -> tuple[Channel, list[tuple[Channel, str]]]:
    """Return the next usable channel after ``after`` and the ones skipped on the way."""
    start = 0 if after is None else CHAIN.index(after) + 1
    skipped: list[tuple[Channel, str]] = []
    for channel in CHAIN[start:]:
        reason = unusable_reason(channel, patient)
        if reason is None:
            return channel, skipped
        skipped.append((channel, reason))
    return Channel.MANUAL, skipped


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
    """Write a notification and its first attempt; None if this event was already queued."""
    now = now or now_utc()
    notification_id = db.session.scalar(
        insert(Notification)
        .values(
            patient_id=patient.id,
            purpose=purpose,
            dedupe_key=dedupe_key,
            offer_id=offer_id,
            appointment_id=appointment_id,
            context=context or {},
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
        .returning(Notification.id)
    )
    if notification_id is None:
        return None
    notification = db.session.get(Notification, notification_id)
    add_attempt(notification, patient, after=None, now=now)
    return notification


def add_attempt(
    notification: Notification, patient: Patient, *, after: Channel | None, now: datetime
) -> NotificationAttempt:
    """Add the attempt on the next usable channel (recording skipped ones) and send it."""
    channel, skipped = next_channel(patient, after)
    for skipped_channel, reason in skipped:
        db.session.add(
            NotificationAttempt(
                notification_id=notification.id,
                patient_id=patient.id,
                purpose=notification.purpose,
                channel=skipped_channel,
                status=AttemptStatus.SKIPPED,
                failure_reason=reason,
                failed_at=now,
                not_before=now,
            )
        )
        log.info("notification %s: %s skipped (%s)", notification.id, skipped_channel.value, reason)
    attempt = NotificationAttempt(
        notification_id=notification.id,
        patient_id=patient.id,
        purpose=notification.purpose,
        channel=channel,
        not_before=now,
    )
    db.session.add(attempt)
    db.session.flush()
    from jobs.notify import send_attempt

    enqueue_after_commit(db.session, send_attempt, attempt.id, queue="notifications")
    return attempt


def attempts_for(notification_id: int) -> list[NotificationAttempt]:
    return list(
        db.session.scalars(
            sa.select(NotificationAttempt)
            .where(NotificationAttempt.notification_id == notification_id)
            .order_by(NotificationAttempt.id)
        )
    )
