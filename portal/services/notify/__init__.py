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
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from portal.db import db, insert_rows, now_utc
from portal.models import Notification, NotificationAttempt, Patient
from portal.models.enums import AttemptStatus, Channel, NotificationStatus, Purpose
from portal.services.notify.chain import enqueue_send, plan_channels, plan_next, still_relevant
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
    return db.session.get(Notification, queued[0]) if queued else None


def queue_notifications(
    messages: list[Message], purpose: Purpose, *, now: datetime | None = None
) -> list[int]:
    """``queue_notification`` for many messages in a constant number of statements.

    One query for the frequency caps, one ``insert_rows`` for the notifications (those
    already queued, same dedupe key, are left out), one for their first attempts (the
    channels skipped and the one to try, as ``chain.plan_channels`` decides); the sends
    are enqueued after commit. A message that needs more than that (no longer relevant,
    no usable channel, an invalid phone to flag) takes ``chain.plan_next``, one at a
    time. Returns the ids of the notifications written, in order.
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
    written = insert_rows(
        Notification.__table__,
        rows,
        returning=("id", "dedupe_key"),
        skip_conflicts_on=["dedupe_key"],
    )
    by_key = {m.dedupe_key: m for m in messages}
    queued = sorted((row.id, by_key[row.dedupe_key]) for row in written)
    attempts: list[dict[str, Any]] = []
    one_by_one: list[int] = []
    for notification_id, m in queued:
        reason = reasons[m.patient.id]
        if reason is not None:
            attempts.append(_attempt(notification_id, m, purpose, CHAIN[0], now, skipped=reason))
            log.info("notification %s not sent: %s", notification_id, reason)
            continue
        about = SimpleNamespace(
            purpose=purpose,
            offer_id=m.offer_id,
            appointment_id=m.appointment_id,
            context=m.context or {},
        )
        plan = plan_channels(m.patient, purpose, None, set(), now)
        if plan.exhausted or plan.invalid_phone or not still_relevant(about, now):
            one_by_one.append(notification_id)
            continue
        for channel, why in plan.skips:
            attempts.append(_attempt(notification_id, m, purpose, channel, now, skipped=why))
            log.info("notification %s: %s skipped (%s)", notification_id, channel.value, why)
        if plan.send is not None:
            channel, not_before = plan.send
            attempts.append(_attempt(notification_id, m, purpose, channel, now, not_before))
    made = insert_rows(
        NotificationAttempt.__table__,
        attempts,
        returning=("id", "notification_id", "purpose", "status", "not_before"),
    )
    to_send = {row.notification_id: row for row in made if row.status == AttemptStatus.QUEUED}
    slow = set(one_by_one)
    # Sends are enqueued in the notifications' order (a wave's best-ranked patient
    # first), whichever way each was planned.
    for notification_id, _ in queued:
        if notification_id in to_send:
            enqueue_send(to_send[notification_id], now)
        elif notification_id in slow:
            notification = db.session.get(Notification, notification_id)
            if notification is not None:
                plan_next(notification, None, now, fresh=True)
    return [notification_id for notification_id, _ in queued]


def _attempt(
    notification_id: int,
    message: Message,
    purpose: Purpose,
    channel: Channel,
    now: datetime,
    not_before: datetime | None = None,
    *,
    skipped: str | None = None,
) -> dict[str, Any]:
    """One first-attempt row for ``insert_rows`` (every column the model defaults)."""
    return {
        "notification_id": notification_id,
        "patient_id": message.patient.id,
        "purpose": purpose,
        "channel": channel,
        "status": AttemptStatus.SKIPPED if skipped else AttemptStatus.QUEUED,
        "failure_reason": skipped,
        "failed_at": now if skipped else None,
        "not_before": not_before or now,
        "created_at": now,
        "updated_at": now,
    }


def attempts_for(notification_id: int) -> list[NotificationAttempt]:
    """Return a notification's attempts in the order they were made."""
    return list(
        db.session.scalars(
            sa.select(NotificationAttempt)
            .where(NotificationAttempt.notification_id == notification_id)
            .order_by(NotificationAttempt.id)
        )
    )
