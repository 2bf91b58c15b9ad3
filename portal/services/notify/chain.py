"""The delivery chain as a state machine over ``NotificationAttempt`` rows.

An attempt moves ``queued → sending → sent → delivered`` or ends in a failure
(``failed``, ``undelivered``, ``bounced``, ``no_answer``, ``busy``, ``canceled``,
``skipped``, ``timed_out``). A failure adds the attempt on the next usable channel in
the same transaction; one attempt per channel per message is a database constraint.
The chain ends delivered, cancelled (no longer relevant), or exhausted: an outreach
task for staff, the patient's waitlist entries unreachable and a flag raised.

Everything here flushes; the caller commits. Logs carry ids only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from portal.db import db
from portal.models import (
    Appointment,
    Notification,
    NotificationAttempt,
    Offer,
    Patient,
)
from portal.models.enums import (
    FINAL_ATTEMPT_STATUSES,
    AppointmentStatus,
    AttemptStatus,
    Channel,
    NotificationStatus,
    OfferStatus,
    Purpose,
)
from portal.queue import schedule, send_job_id
from portal.services import flags
from portal.services.audit import SYSTEM, Action, record
from portal.services.notify.messages import patient_link
from portal.services.notify.policy import (
    INVALID_PHONE,
    QUIET_SKIP_REASON,
    channels_after,
    patient_region,
    quiet_hours,
    unusable_reason,
)
from portal.services.outreach import open_outreach_task

log = logging.getLogger(__name__)

#: Attempts that still stand a chance: while one exists the chain does not move on.
LIVE_STATUSES = frozenset(
    {AttemptStatus.QUEUED, AttemptStatus.SENDING, AttemptStatus.SENT, AttemptStatus.DELIVERED}
)


def still_relevant(notification: Notification | Any, now: datetime) -> bool:
    """An offer message is pointless once the offer cannot be answered any more; a
    reminder once its visit was cancelled, moved or has begun.

    ``notification``: a ``Notification`` or anything with its ``purpose``, ``offer_id``,
    ``appointment_id`` and ``context`` (a batch being written has no objects yet)."""
    if notification.purpose == Purpose.REMINDER and notification.appointment_id:
        return reminder_still_relevant(notification, now)
    if notification.purpose == Purpose.OFFER and notification.offer_id:
        offer = db.session.get(Offer, notification.offer_id)
        return (
            offer is not None
            and offer.status == OfferStatus.PENDING
            and offer.window_expires_at > now
        )
    return True


def reminder_still_relevant(notification: Notification, now: datetime) -> bool:
    """A reminder is stale once its visit is no longer booked for the time it names."""
    appointment = db.session.get(Appointment, notification.appointment_id)
    planned_for = notification.context.get("slot_start_at")
    return (
        appointment is not None
        and appointment.status in (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
        and appointment.slot.start_at > now
        and (planned_for is None or planned_for == appointment.slot.start_at.isoformat())
    )


@dataclass(frozen=True)
class ChannelPlan:
    """Where a message goes next: the channels skipped (and why), then the one to try.

    ``send`` is ``(channel, not_before)`` (None: now); no ``send`` means nothing is left
    but a person (``exhausted``) or, after a skip on the last channel, nothing at all.
    """

    skips: tuple[tuple[Channel, str], ...] = ()
    send: tuple[Channel, datetime | None] | None = None
    exhausted: bool = False

    @property
    def invalid_phone(self) -> bool:
        return any(reason == INVALID_PHONE for _, reason in self.skips)


def plan_channels(
    patient: Patient, purpose: Purpose, after: Channel | None, taken: set[Channel], now: datetime
) -> ChannelPlan:
    """Decide the next channel for one message (no database work: callers apply it)."""
    skips: list[tuple[Channel, str]] = []
    for channel in channels_after(after):
        if channel in taken:
            continue
        if channel == Channel.MANUAL:
            return ChannelPlan(tuple(skips), exhausted=True)
        reason = unusable_reason(channel, patient)
        if reason is not None:
            skips.append((channel, reason))
            continue
        quiet = quiet_hours(channel, purpose, patient.timezone, now, region=patient_region(patient))
        if quiet is not None and quiet.skip:
            skips.append((channel, QUIET_SKIP_REASON))
            continue
        return ChannelPlan(tuple(skips), send=(channel, quiet.until if quiet else None))
    return ChannelPlan(tuple(skips))


def plan_next(
    notification: Notification,
    after: Channel | None,
    now: datetime,
    *,
    fresh: bool = False,
) -> NotificationAttempt | None:
    """Add the attempt on the next channel able to carry the message (recording skips).

    ``fresh``: the notification was just written and has no attempts yet (no query).
    """
    if not still_relevant(notification, now):
        cancel_notification(notification, "no longer relevant", now)
        return None
    patient = notification.patient
    taken: set[Channel] = (
        set()
        if fresh
        else set(
            db.session.scalars(
                sa.select(NotificationAttempt.channel).where(
                    NotificationAttempt.notification_id == notification.id
                )
            )
        )
    )
    plan = plan_channels(patient, notification.purpose, after, taken, now)
    for channel, reason in plan.skips:
        _add(notification, channel, now, skipped=reason)
    if plan.invalid_phone:
        flag_invalid_phone(patient)
    if plan.exhausted:
        return exhaust(notification, now)
    if plan.send is None:
        return None
    channel, not_before = plan.send
    return _add(notification, channel, now, not_before=not_before)


def flag_invalid_phone(patient: Patient) -> None:
    flags.flag_invalid_phone(patient, "No valid phone number: texts and calls are skipped.")


def _add(
    notification: Notification,
    channel: Channel,
    now: datetime,
    *,
    skipped: str | None = None,
    not_before: datetime | None = None,
) -> NotificationAttempt:
    attempt = NotificationAttempt(
        notification_id=notification.id,
        patient_id=notification.patient_id,
        purpose=notification.purpose,
        channel=channel,
        status=AttemptStatus.SKIPPED if skipped else AttemptStatus.QUEUED,
        failure_reason=skipped,
        failed_at=now if skipped else None,
        not_before=not_before or now,
    )
    db.session.add(attempt)
    if skipped:
        log.info("notification %s: %s skipped (%s)", notification.id, channel.value, skipped)
    db.session.flush()
    if not skipped:
        enqueue_send(attempt, now)
    return attempt


def enqueue_send(attempt: NotificationAttempt | Any, now: datetime) -> None:
    """Send ``attempt`` from a job once this transaction commits (at its not-before time)."""
    at = attempt.not_before if attempt.not_before > now else None
    job_id = send_job_id(attempt.id)
    if at is not None:  # never reuse the id of a job that may still be running
        job_id += f"-at-{int(at.timestamp())}"
    # An offer's window is short: its text goes ahead of messages already waiting.
    schedule(
        "send_attempt", attempt.id, at=at, job_id=job_id, at_front=attempt.purpose == Purpose.OFFER
    )


def fail_attempt(
    attempt: NotificationAttempt, status: AttemptStatus, reason: str, now: datetime
) -> NotificationAttempt | None:
    """End ``attempt`` in a failure and move the chain on; return the next attempt if any."""
    assert status in FINAL_ATTEMPT_STATUSES and status != AttemptStatus.DELIVERED
    attempt.status = status
    attempt.failure_reason = reason[:200]
    attempt.failed_at = now
    db.session.flush()
    log.info("attempt %s (%s): %s", attempt.id, attempt.channel.value, status.value)
    notification = _locked_notification(attempt.notification_id)
    if notification.status != NotificationStatus.PENDING or _has_live_attempt(notification):
        return None
    return plan_next(notification, attempt.channel, now)


def deliver_attempt(attempt: NotificationAttempt, now: datetime) -> None:
    """Mark ``attempt`` delivered: the message is done, later queued attempts are dropped."""
    attempt.status = AttemptStatus.DELIVERED
    attempt.delivered_at = now
    db.session.flush()
    log.info("attempt %s (%s): delivered", attempt.id, attempt.channel.value)
    notification = _locked_notification(attempt.notification_id)
    db.session.execute(
        sa.update(NotificationAttempt)
        .where(
            NotificationAttempt.notification_id == notification.id,
            NotificationAttempt.status == AttemptStatus.QUEUED,
        )
        .values(
            status=AttemptStatus.CANCELED,
            failure_reason=f"delivered by {attempt.channel.value}",
            failed_at=now,
            updated_at=now,
        )
    )
    if notification.status == NotificationStatus.PENDING:
        notification.status = NotificationStatus.DELIVERED
        notification.completed_at = now
        record(
            SYSTEM, Action.NOTIFICATION_DELIVERED, notification, after={"channel": attempt.channel}
        )


def cancel_notification(notification: Notification, reason: str, now: datetime) -> None:
    """Stop a chain whose message no longer matters (e.g. the offer was taken)."""
    if notification.status != NotificationStatus.PENDING:
        return
    notification.status = NotificationStatus.CANCELLED
    notification.completed_at = now
    log.info("notification %s cancelled (%s)", notification.id, reason)
    record(SYSTEM, Action.NOTIFICATION_CANCELLED, notification, after={"reason": reason})


def exhaust(notification: Notification, now: datetime) -> NotificationAttempt:
    """No channel reached the patient: raise a manual outreach task and flag them."""
    attempt = NotificationAttempt(
        notification_id=notification.id,
        patient_id=notification.patient_id,
        purpose=notification.purpose,
        channel=Channel.MANUAL,
        status=AttemptStatus.SENT,
        provider="staff",
        fallback_link=patient_link(notification),
        not_before=now,
        claimed_at=now,
        sent_at=now,
    )
    db.session.add(attempt)
    open_outreach_task(notification, now)
    notification.status = NotificationStatus.EXHAUSTED
    notification.completed_at = now
    db.session.flush()
    log.warning(
        "notification %s exhausted: outreach task for patient %s",
        notification.id,
        notification.patient_id,
    )
    record(SYSTEM, Action.NOTIFICATION_EXHAUSTED, notification, after={"outreach": True})
    flags.mark_unreachable(notification.patient, now)
    return attempt


def _locked_notification(notification_id: int) -> Notification:
    return db.session.scalars(
        sa.select(Notification)
        .where(Notification.id == notification_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _has_live_attempt(notification: Notification) -> bool:
    return bool(
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(NotificationAttempt)
            .where(
                NotificationAttempt.notification_id == notification.id,
                NotificationAttempt.channel != Channel.MANUAL,
                NotificationAttempt.status.in_(LIVE_STATUSES),
            )
        )
    )
