"""Appointment reminders: scheduled notifications kept in PostgreSQL, not in Redis.

A reminder row is the truth: an RQ job is enqueued for its due time, and the periodic
``dispatch_reminders`` sweep sends any that are due whatever became of that job, so a
crashed worker or an emptied Redis loses none.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import PkMixin, TimestampMixin, UTCDateTime, db, enum_column
from portal.models.booking import Appointment
from portal.models.enums import ReminderStatus


class Reminder(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "reminder"
    __table_args__ = (
        # One live reminder per lead time per appointment: replanning cancels first.
        sa.Index(
            "uq_reminder_one_scheduled_per_lead",
            "appointment_id",
            "lead_hours",
            unique=True,
            postgresql_where=sa.text("status = 'scheduled'"),
        ),
        sa.Index("ix_reminder_status_due", "status", "due_at"),
        sa.CheckConstraint("lead_hours > 0", name="lead_positive"),
    )

    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointment.id"), index=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    #: How long before the visit it reminds (72 = "3 days before").
    lead_hours: Mapped[int]
    #: The visit's start this reminder was planned for: a moved visit makes it stale.
    slot_start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The cadence's moment (start minus the lead, on the patient's calendar).
    nominal_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When it goes: ``nominal_at`` moved out of the patient's quiet hours.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[ReminderStatus] = mapped_column(
        enum_column(ReminderStatus, "reminder_status"), default=ReminderStatus.SCHEDULED
    )
    #: Why it was moved, skipped or cancelled, in words staff can read.
    note: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")
    notification_id: Mapped[int | None] = mapped_column(sa.ForeignKey("notification.id"))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    appointment: Mapped[Appointment] = relationship()

    def __repr__(self) -> str:
        return f"<Reminder {self.id} {self.lead_hours}h {self.status}>"
