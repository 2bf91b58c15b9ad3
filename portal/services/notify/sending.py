"""Sending one attempt, and the sweeps that resolve what jobs left behind.

Sending: claim the row (``queued → sending``, a conditional update) and commit that
*before* the provider is called, so a retried or duplicated job finds nothing to do
and no attempt is ever sent twice on its channel. Then call the provider with no
transaction open and record the outcome (``sent`` awaiting a receipt, ``delivered``
for SMTP, or a failure that escalates).

The crash window — a worker killed between the claim and recording the outcome —
leaves the row in ``sending``. ``resolve_stranded`` treats such a row as *failed with
an unknown outcome* (``timed_out``) and moves to the next channel instead of sending on
the same one again: a patient may get an email after a text that did arrive, but
never two texts. If the provider's receipt turns up after all, it still counts (the
callback URL carries the attempt id, so it is matched even without a provider id).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import NotificationAttempt
from portal.models.enums import AttemptStatus, Channel, NotificationStatus
from portal.services.notify import chain
from portal.services.notify.backends import (
    AmbiguousSendError,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from portal.services.notify.messages import render_message
from portal.services.notify.policy import (
    QUIET_SKIP_REASON,
    patient_region,
    quiet_hours,
    receipt_timeout,
    unusable_reason,
)
from portal.services.notify.providers import backend_for
from portal.services.notify.receipts import apply_provider_verdict, locked_attempt

log = logging.getLogger(__name__)

#: A claim older than this whose outcome was never recorded: the worker died mid-send.
STRANDED_AFTER = timedelta(minutes=5)
#: Queued rows younger than this are left to the job enqueued with them.
ENQUEUE_GRACE = timedelta(seconds=20)


class Outcome(StrEnum):
    """What one call of ``send_attempt`` did."""

    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELED = "canceled"
    DEFERRED = "deferred"  # back to queued until the quiet hours end
    RETRY = "retry"  # transient error: back to queued, the job retries with backoff


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


def send_attempt(
    attempt_id: int, now: datetime | None = None, *, retry_delay: float | None = None
) -> Outcome | None:
    """Send one attempt (commits); None if it was not queued and due.

    ``retry_delay`` (seconds) says the caller will run this again after a transient
    error; without it a transient error counts as a failure of the channel.
    """
    now = now or now_utc()
    attempt = claim(attempt_id, now)
    if attempt is None:
        db.session.rollback()
        return None
    outcome = _check_before_send(attempt, now)
    if outcome is not None:
        db.session.commit()
        return outcome
    try:
        message = render_message(attempt.notification, attempt.channel)
    except Exception as exc:  # a template bug must not strand the chain
        log.error("attempt %s: rendering failed (%s)", attempt.id, type(exc).__name__)
        chain.fail_attempt(attempt, AttemptStatus.FAILED, "message could not be rendered", now)
        db.session.commit()
        return Outcome.FAILED
    backend = backend_for(attempt.channel)
    to = address_for(attempt)
    attempt.provider = backend.name
    attempt.fallback_link = message.links[0] if message.links else None
    if not backend.transactional:
        db.session.flush()
        db.session.expunge(attempt)  # no database access while the provider call runs
        db.session.commit()  # the claim is durable before the provider hears of it
    try:
        provider_id = backend.send(attempt, to, message)
    except SendError as exc:
        return _record_error(attempt.id, exc, retry_delay)
    except Exception as exc:
        log.error("attempt %s: unexpected send error (%s)", attempt.id, type(exc).__name__)
        return _record_error(attempt.id, AmbiguousSendError("unexpected error"), retry_delay)
    return _record_sent(attempt.id, provider_id, final=backend.final_on_accept)


def _check_before_send(attempt: NotificationAttempt, now: datetime) -> Outcome | None:
    """Things may have changed since the attempt was planned; re-check them now."""
    notification = attempt.notification
    if notification.status != NotificationStatus.PENDING:
        attempt.status = AttemptStatus.CANCELED
        attempt.failure_reason = f"message already {notification.status.value}"
        attempt.failed_at = now
        return Outcome.CANCELED
    if not chain.still_relevant(notification, now):
        attempt.status = AttemptStatus.CANCELED
        attempt.failure_reason = "no longer relevant"
        attempt.failed_at = now
        chain.cancel_notification(notification, "no longer relevant", now)
        return Outcome.CANCELED
    reason = unusable_reason(attempt.channel, notification.patient)
    if reason is not None:
        chain.fail_attempt(attempt, AttemptStatus.SKIPPED, reason, now)
        return Outcome.SKIPPED
    patient = notification.patient
    quiet = quiet_hours(
        attempt.channel, notification.purpose, patient.timezone, now, region=patient_region(patient)
    )
    if quiet is not None and quiet.skip:
        chain.fail_attempt(attempt, AttemptStatus.SKIPPED, QUIET_SKIP_REASON, now)
        return Outcome.SKIPPED
    if quiet is not None:
        attempt.status = AttemptStatus.QUEUED
        attempt.not_before = quiet.until
        attempt.claimed_at = None
        chain.enqueue_send(attempt, now)
        return Outcome.DEFERRED
    return None


def _record_sent(attempt_id: int, provider_id: str, *, final: bool) -> Outcome:
    now = now_utc()
    attempt = locked_attempt(attempt_id)
    attempt.provider_id = attempt.provider_id or provider_id[:64]
    attempt.sent_at = attempt.sent_at or now
    outcome = Outcome.SENT
    if attempt.status == AttemptStatus.SENDING:  # a receipt may already have moved it on
        if final:
            chain.deliver_attempt(attempt, now)
            outcome = Outcome.DELIVERED
        else:
            attempt.status = AttemptStatus.SENT
            attempt.receipt_deadline_at = now + receipt_timeout(attempt.channel)
    db.session.commit()
    log.info(
        "attempt %s (%s) %s via %s",
        attempt.id,
        attempt.channel.value,
        outcome.value,
        attempt.provider,
    )
    return outcome


def _record_error(attempt_id: int, exc: SendError, retry_delay: float | None) -> Outcome | None:
    db.session.rollback()
    now = now_utc()
    attempt = locked_attempt(attempt_id)
    if attempt.status != AttemptStatus.SENDING:  # a receipt already decided it
        db.session.commit()
        return None
    log.info("attempt %s (%s): %s", attempt.id, attempt.channel.value, exc.reason)
    if isinstance(exc, AmbiguousSendError):
        # It may have gone out: never resend here; a receipt or the deadline decides.
        attempt.status = AttemptStatus.SENT
        attempt.sent_at = now
        attempt.failure_reason = exc.reason
        attempt.receipt_deadline_at = now + receipt_timeout(attempt.channel)
        outcome = Outcome.SENT
    elif isinstance(exc, TransientSendError) and retry_delay is not None:
        attempt.status = AttemptStatus.QUEUED
        attempt.claimed_at = None
        attempt.not_before = now + timedelta(seconds=max(retry_delay - 1, 0))
        attempt.failure_reason = f"will retry: {exc.reason}"
        outcome = Outcome.RETRY
    else:
        if isinstance(exc, PermanentSendError):
            apply_provider_verdict(attempt, exc.code)
        chain.fail_attempt(attempt, AttemptStatus.FAILED, exc.reason, now)
        outcome = Outcome.FAILED
    db.session.commit()
    return outcome


# --- the sweeps run by the dispatcher ----------------------------------------------


def due_attempt_ids(now: datetime, limit: int = 500) -> list[int]:
    """Queued attempts that are due and whose own job should have run by now."""
    return list(
        db.session.scalars(
            sa.select(NotificationAttempt.id)
            .where(
                NotificationAttempt.status == AttemptStatus.QUEUED,
                NotificationAttempt.not_before <= now,
                NotificationAttempt.updated_at <= now - ENQUEUE_GRACE,
            )
            .order_by(NotificationAttempt.not_before)
            .limit(limit)
        )
    )


def stranded_attempt_ids(now: datetime, limit: int = 500) -> list[int]:
    """Attempts claimed long ago whose send never finished (a worker died)."""
    return list(
        db.session.scalars(
            sa.select(NotificationAttempt.id)
            .where(
                NotificationAttempt.status == AttemptStatus.SENDING,
                NotificationAttempt.claimed_at <= now - STRANDED_AFTER,
            )
            .limit(limit)
        )
    )


def overdue_receipt_ids(now: datetime, limit: int = 500) -> list[int]:
    """Sent attempts whose delivery receipt is overdue (a silent failure)."""
    return list(
        db.session.scalars(
            sa.select(NotificationAttempt.id)
            .where(
                NotificationAttempt.status == AttemptStatus.SENT,
                NotificationAttempt.receipt_deadline_at <= now,
            )
            .limit(limit)
        )
    )


def resolve_stranded(attempt_id: int, now: datetime) -> bool:
    """Give up on a send whose outcome is unknown and escalate (commits)."""
    attempt = locked_attempt(attempt_id)
    if attempt.status != AttemptStatus.SENDING or attempt.claimed_at > now - STRANDED_AFTER:
        db.session.commit()
        return False
    reason = "worker stopped mid-send; outcome unknown, not resent on this channel"
    chain.fail_attempt(attempt, AttemptStatus.TIMED_OUT, reason, now)
    db.session.commit()
    return True


def expire_receipt(attempt_id: int, now: datetime) -> bool:
    """Escalate a sent attempt whose receipt never came (commits)."""
    attempt = locked_attempt(attempt_id)
    deadline = attempt.receipt_deadline_at
    if attempt.status != AttemptStatus.SENT or deadline is None or deadline > now:
        db.session.commit()
        return False
    minutes = round(receipt_timeout(attempt.channel).total_seconds() / 60)
    chain.fail_attempt(attempt, AttemptStatus.TIMED_OUT, f"no receipt within {minutes} min", now)
    db.session.commit()
    return True
