"""The notification outbox: messages, their per-channel attempts, receipts, manual outreach."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import PkMixin, TimestampMixin, UTCDateTime, db, enum_column, now_utc
from portal.models.enums import (
    AttemptStatus,
    Channel,
    NotificationStatus,
    OutreachOutcome,
    OutreachPriority,
    Purpose,
)
from portal.models.patients import Patient

if TYPE_CHECKING:
    from portal.models.booking import Appointment, Offer


class Notification(PkMixin, TimestampMixin, db.Model):
    """One thing a patient must be told; delivered through a chain of channel attempts.

    Written in the same transaction as the event that causes it (a transactional outbox).
    ``dedupe_key`` names the event (e.g. ``offer:17``) so the same event never yields two
    messages.
    """

    __tablename__ = "notification"
    __table_args__ = (
        sa.Index("ix_notification_status", "status"),
        sa.Index("ix_notification_created_at", "created_at"),
    )

    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose, "purpose"))
    status: Mapped[NotificationStatus] = mapped_column(
        enum_column(NotificationStatus, "notification_status"),
        default=NotificationStatus.PENDING,
    )
    dedupe_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    offer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("offer.id"), index=True)
    appointment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("appointment.id"))
    #: Ids and flags the templates need (never names or numbers: those are read at send time).
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    attempts: Mapped[list[NotificationAttempt]] = relationship(
        back_populates="notification", order_by="NotificationAttempt.id"
    )


class NotificationAttempt(PkMixin, TimestampMixin, db.Model):
    """One try on one channel; its status only ever moves forward."""

    __tablename__ = "notification_attempt"
    __table_args__ = (
        sa.Index("ix_notification_attempt_due", "status", "not_before"),
        sa.Index("ix_notification_attempt_provider", "provider_id"),
        # One attempt per channel per message: escalation can never double a channel.
        sa.UniqueConstraint("notification_id", "channel"),
    )

    notification_id: Mapped[int] = mapped_column(sa.ForeignKey("notification.id"))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose, "purpose"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "channel"))
    status: Mapped[AttemptStatus] = mapped_column(
        enum_column(AttemptStatus, "attempt_status"), default=AttemptStatus.QUEUED
    )
    #: Not to be sent before this instant (quiet hours).
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    provider: Mapped[str | None] = mapped_column(sa.String(20))
    provider_id: Mapped[str | None] = mapped_column(sa.String(64))
    failure_reason: Mapped[str | None] = mapped_column(sa.String(200))
    #: The patient link the message carried, so staff can hand it over by other means.
    fallback_link: Mapped[str | None] = mapped_column(sa.String(500))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: No receipt by then means a silent failure: escalate.
    receipt_deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    notification: Mapped[Notification] = relationship(back_populates="attempts")


class DeliveryEvent(PkMixin, db.Model):
    """Every provider callback as received (deduplicated), for the timeline and replays."""

    __tablename__ = "delivery_event"

    attempt_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("notification_attempt.id"), index=True
    )
    provider_id: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(30))
    error_code: Mapped[str | None] = mapped_column(sa.String(20))
    idempotency_key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class OutboxMessage(PkMixin, TimestampMixin, db.Model):
    """A message 'sent' through the outbox backend (no provider credentials configured)."""

    __tablename__ = "outbox_message"

    attempt_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("notification_attempt.id"), unique=True
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "channel"))
    to: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str | None] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)
    links: Mapped[list[str]] = mapped_column(JSONB, default=list)
    status: Mapped[str] = mapped_column(sa.String(20), default="sent")

    attempt: Mapped[NotificationAttempt | None] = relationship()


class OutreachTask(PkMixin, TimestampMixin, db.Model):
    """A patient no channel could reach, for staff to phone by hand."""

    __tablename__ = "outreach_task"
    __table_args__ = (
        sa.Index("ix_outreach_task_open", "completed_at", "deadline_at"),
        sa.UniqueConstraint("notification_id"),
    )

    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    notification_id: Mapped[int | None] = mapped_column(sa.ForeignKey("notification.id"))
    offer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("offer.id"))
    appointment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("appointment.id"))
    reason: Mapped[str] = mapped_column(sa.String(300))
    priority: Mapped[OutreachPriority] = mapped_column(
        enum_column(OutreachPriority, "outreach_priority"), default=OutreachPriority.HIGH
    )
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A claim nobody works on lapses: after this anyone may claim the task.
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: "No answer": the next call should not be made before this.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Calls made so far (every recorded outcome counts one).
    call_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    outcome: Mapped[OutreachOutcome | None] = mapped_column(
        enum_column(OutreachOutcome, "outreach_outcome")
    )
    outcome_notes: Mapped[str] = mapped_column(sa.Text, default="")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    notification: Mapped[Notification | None] = relationship()
    offer: Mapped[Offer | None] = relationship()
    appointment: Mapped[Appointment | None] = relationship()
