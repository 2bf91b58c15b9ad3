"""The outbox backend: with no provider credentials, 'sending' stores the message here.

It stands in for Twilio (SMS, voice) and SMTP (email) and behaves like a provider
that sends no receipts by itself: a developer marks a message delivered, failed,
undelivered or unanswered on ``/staff/outbox``, which goes through exactly the code a
provider callback takes (``receipts.apply_receipt``). Left alone, a message times out
like a silent failure and the chain moves on.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from portal.db import db
from portal.models import Notification, NotificationAttempt, OutboxMessage
from portal.models.enums import Channel
from portal.services.errors import DomainError, NotFound
from portal.services.notify.messages import Message
from portal.services.notify.receipts import Receipt, apply_receipt

#: What a developer may report for an outbox message, per channel.
MARKS: dict[Channel, tuple[str, ...]] = {
    Channel.SMS: ("delivered", "undelivered", "failed"),
    Channel.EMAIL: ("delivered", "bounced", "failed"),
    Channel.VOICE: ("delivered", "no-answer", "busy", "failed"),
}


class OutboxBackend:
    """Stores each message as an ``OutboxMessage`` row in the sending transaction."""

    name = "outbox"
    transactional = True
    final_on_accept = False

    def send(self, attempt: NotificationAttempt, to: str, message: Message) -> str:
        row = OutboxMessage(
            attempt_id=attempt.id,
            channel=attempt.channel,
            to=to,
            subject=message.subject,
            body=message.body + _attachment_note(message),
            html=message.html,
            links=message.links,
            status="sent",
        )
        db.session.add(row)
        db.session.flush()
        return provider_id(row.id)


def _attachment_note(message: Message) -> str:
    """Name the files an email would carry: the outbox keeps only their names."""
    if not message.attachments:
        return ""
    names = ", ".join(f"{a.filename} ({a.maintype}/{a.subtype})" for a in message.attachments)
    return f"\n\n[Attached, not stored in the outbox: {names}]"


def provider_id(message_id: int) -> str:
    return f"OB{message_id}"


def mark_outbox_message(message_id: int, status: str) -> str:
    """Report a delivery outcome for an outbox message, as a provider would (flushes)."""
    row = db.session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFound("No such outbox message.", code="unknown_outbox_message")
    if status not in MARKS.get(Channel(row.channel), ()):
        raise DomainError(f"Cannot mark a {row.channel} message {status}.", code="bad_mark")
    result = apply_receipt(
        Receipt(
            provider=OutboxBackend.name,
            provider_id=provider_id(row.id),
            status=status,
            idempotency_key=f"outbox:{row.id}:{status}",
            attempt_id=row.attempt_id,
        )
    )
    if result not in ("duplicate", "ignored (already final)", "unmatched"):
        row.status = status
    return result


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
            "attempt_status": attempt.status.value if attempt else None,
            "status": message.status,
            "subject": message.subject,
            "body": message.body,
            "links": list(message.links or []),
        }
        for message, attempt, notification in db.session.execute(query)
    ]
