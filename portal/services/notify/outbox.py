"""The outbox backend: with no provider credentials, 'sending' stores the message here."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from portal.db import db
from portal.models import Notification, NotificationAttempt, OutboxMessage
from portal.models.enums import Channel
from portal.services.notify.messages import Message


class OutboxBackend:
    """Stores each message as an ``OutboxMessage`` row in the sending transaction."""

    name = "outbox"

    def send(self, attempt: NotificationAttempt, to: str, message: Message) -> str:
        row = OutboxMessage(
            attempt_id=attempt.id,
            channel=attempt.channel,
            to=to,
            subject=message.subject,
            body=message.body,
            html=message.html,
            links=message.links,
            status="sent",
        )
        db.session.add(row)
        db.session.flush()
        return f"OB{row.id}"


def list_outbox(*, to: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Return outbox messages, newest first, as plain dicts (CONTRACT: `portal outbox`)."""
    query = (
        sa.select(OutboxMessage, NotificationAttempt, Notification)
        .outerjoin(NotificationAttempt, NotificationAttempt.id == OutboxMessage.attempt_id)
        .outerjoin(Notification, Notification.id == NotificationAttempt.notification_id)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    if to:
        query = query.where(OutboxMessage.to == to)
    return [
        {
            "id": message.id,
            "created_at": message.created_at.isoformat(),
            "channel": Channel(message.channel).value,
            "to": message.to,
            "purpose": notification.purpose.value if notification else None,
            "patient_id": notification.patient_id if notification else None,
            "offer_id": notification.offer_id if notification else None,
            "appointment_id": notification.appointment_id if notification else None,
            "notification_id": notification.id if notification else None,
            "attempt_id": attempt.id if attempt else None,
            "status": message.status,
            "subject": message.subject,
            "body": message.body,
            "links": list(message.links or []),
        }
        for message, attempt, notification in db.session.execute(query)
    ]
