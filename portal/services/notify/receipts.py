"""Delivery receipts: provider callbacks (and outbox marks) move attempts forward.

Every receipt is stored once as a ``DeliveryEvent`` (its idempotency key is unique),
so a replayed callback does nothing. Statuses only move forward: once an attempt is
final nothing changes it, with one exception — a real ``delivered`` receipt for an
attempt we had given up on (``timed_out``: no receipt in time, or a worker that died
mid-send) still counts, and drops whatever later channel is still waiting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.db import db, now_utc
from portal.models import DeliveryEvent, NotificationAttempt
from portal.models.enums import FINAL_ATTEMPT_STATUSES, AttemptStatus, Channel
from portal.services import flags
from portal.services.audit import Action, Actor, record
from portal.services.notify import chain
from portal.services.notify.backends import INVALID_NUMBER_CODES, OPTED_OUT_CODE
from portal.services.notify.policy import receipt_timeout

log = logging.getLogger(__name__)

#: Provider statuses (Twilio messages and calls, outbox marks) and what they mean here.
STATUS_MAP: dict[str, AttemptStatus] = {
    "sent": AttemptStatus.SENT,
    "delivered": AttemptStatus.DELIVERED,
    "read": AttemptStatus.DELIVERED,
    "completed": AttemptStatus.DELIVERED,  # the call was answered and finished
    "undelivered": AttemptStatus.UNDELIVERED,
    "failed": AttemptStatus.FAILED,
    "canceled": AttemptStatus.CANCELED,
    "busy": AttemptStatus.BUSY,
    "no-answer": AttemptStatus.NO_ANSWER,
    "no_answer": AttemptStatus.NO_ANSWER,
    "bounced": AttemptStatus.BOUNCED,
}


@dataclass(frozen=True)
class Receipt:
    """One status report about one provider message or call."""

    provider: str
    provider_id: str
    status: str
    idempotency_key: str
    error_code: str | None = None
    #: From the signed callback URL: matches even before the provider id is recorded.
    attempt_id: int | None = None
    channel: Channel | None = None


def find_attempt(receipt: Receipt) -> NotificationAttempt | None:
    """Return the attempt a receipt is about, or None."""
    if receipt.attempt_id is not None:
        attempt = db.session.get(NotificationAttempt, receipt.attempt_id)
        if (
            attempt is not None
            and (receipt.channel is None or attempt.channel == receipt.channel)
            and attempt.provider_id in (None, receipt.provider_id)
        ):
            return attempt
    return db.session.scalar(
        sa.select(NotificationAttempt).where(
            NotificationAttempt.provider == receipt.provider,
            NotificationAttempt.provider_id == receipt.provider_id,
        )
    )


def apply_receipt(receipt: Receipt, now: datetime | None = None) -> str:
    """Store ``receipt`` and apply it; return what happened (flushes, caller commits)."""
    now = now or now_utc()
    attempt = find_attempt(receipt)
    stored = db.session.scalar(
        insert(DeliveryEvent)
        .values(
            attempt_id=attempt.id if attempt else None,
            provider_id=receipt.provider_id[:64],
            status=receipt.status[:30],
            error_code=(receipt.error_code or None) and receipt.error_code[:20],
            idempotency_key=receipt.idempotency_key[:160],
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=[DeliveryEvent.idempotency_key])
        .returning(DeliveryEvent.id)
    )
    if stored is None:
        return "duplicate"
    if attempt is None:
        log.info("receipt for unknown %s message %s", receipt.provider, receipt.provider_id)
        return "unmatched"
    new = STATUS_MAP.get(receipt.status.lower())
    if new is None:
        return "progress"
    attempt = locked_attempt(attempt.id)
    if attempt.provider_id is None:
        attempt.provider_id = receipt.provider_id[:64]
    return _transition(attempt, new, receipt, now)


def _transition(
    attempt: NotificationAttempt, new: AttemptStatus, receipt: Receipt, now: datetime
) -> str:
    current = attempt.status
    if current == AttemptStatus.TIMED_OUT and new == AttemptStatus.DELIVERED:
        log.info("attempt %s: late delivery receipt after timing out", attempt.id)
        chain.deliver_attempt(attempt, now)
        return "delivered late"
    if current in FINAL_ATTEMPT_STATUSES:
        return "ignored (already final)"
    if new == AttemptStatus.SENT:
        if current != AttemptStatus.SENT:
            attempt.status = AttemptStatus.SENT
            attempt.sent_at = attempt.sent_at or now
            attempt.receipt_deadline_at = now + receipt_timeout(attempt.channel)
        return "sent"
    if new == AttemptStatus.DELIVERED:
        chain.deliver_attempt(attempt, now)
        return "delivered"
    apply_provider_verdict(attempt, receipt.error_code)
    code = f" (error {receipt.error_code})" if receipt.error_code else ""
    chain.fail_attempt(attempt, new, f"provider reported {receipt.status}{code}", now)
    return new.value


def apply_provider_verdict(attempt: NotificationAttempt, code: str | None) -> None:
    """Act on what an error code says about the patient's number (opt-out, invalid)."""
    if not code or not code.isdigit() or attempt.channel not in (Channel.SMS, Channel.VOICE):
        return
    patient = attempt.notification.patient
    actor = Actor.webhook("twilio")
    if int(code) == OPTED_OUT_CODE and not patient.sms_opt_out:
        patient.sms_opt_out = True
        record(
            actor, Action.PATIENT_SMS_OPT_OUT, patient, after={"sms_opt_out": True, "code": code}
        )
        log.info("patient %s opted out (provider error %s)", patient.id, code)
    elif int(code) in INVALID_NUMBER_CODES and patient.phone_e164:
        patient.phone_e164 = None
        record(actor, Action.PATIENT_PHONE_REJECTED, patient, after={"code": code})
        flags.flag_invalid_phone(patient, f"The phone provider rejected the number (error {code}).")


def locked_attempt(attempt_id: int) -> NotificationAttempt:
    """Load an attempt with a row lock, so outcomes and receipts apply one at a time."""
    return db.session.scalars(
        sa.select(NotificationAttempt)
        .where(NotificationAttempt.id == attempt_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
