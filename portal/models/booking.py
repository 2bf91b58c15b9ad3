"""Appointments and the offers that fill slots."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import PkMixin, TimestampMixin, UTCDateTime, db, enum_column, now_utc
from portal.models.enums import AppointmentSource, AppointmentStatus, OfferStatus
from portal.models.patients import Patient, WaitlistEntry
from portal.models.scheduling import Slot


class Appointment(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "appointment"
    __table_args__ = (
        # The heart of the product: one live booking per slot, whatever the code does.
        sa.Index(
            "uq_appointment_one_active_per_slot",
            "slot_id",
            unique=True,
            postgresql_where=sa.text("status NOT IN ('cancelled', 'no_show')"),
        ),
        # One want, one booking: a waitlist entry is booked at most once at a time.
        sa.Index(
            "uq_appointment_one_active_per_entry",
            "waitlist_entry_id",
            unique=True,
            postgresql_where=sa.text(
                "waitlist_entry_id IS NOT NULL AND status NOT IN ('cancelled', 'no_show')"
            ),
        ),
        sa.Index("ix_appointment_patient_status", "patient_id", "status"),
        sa.CheckConstraint(
            "cancellation_fee_cents IS NULL OR cancellation_fee_cents >= 0",
            name="fee_not_negative",
        ),
    )

    slot_id: Mapped[int] = mapped_column(sa.ForeignKey("slot.id"))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"))
    status: Mapped[AppointmentStatus] = mapped_column(
        enum_column(AppointmentStatus, "appointment_status"), default=AppointmentStatus.BOOKED
    )
    source: Mapped[AppointmentSource] = mapped_column(
        enum_column(AppointmentSource, "appointment_source")
    )
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    offer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("offer.id"))
    #: The waitlist entry this booking came from, so a grace cancellation can rejoin it.
    waitlist_entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("waitlist_entry.id"))
    booked_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    no_show_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(200))
    cancellation_fee_cents: Mapped[int | None]
    grace_cancellation: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: The calendar entry's SEQUENCE (RFC 5545): bumped whenever the patient's copy changes.
    calendar_sequence: Mapped[int] = mapped_column(default=0, server_default="0")

    slot: Mapped[Slot] = relationship()
    patient: Mapped[Patient] = relationship()
    offer: Mapped[Offer | None] = relationship(foreign_keys=[offer_id])


class Offer(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "offer"
    __table_args__ = (
        sa.Index(
            "uq_offer_one_accepted_per_slot",
            "slot_id",
            unique=True,
            postgresql_where=sa.text("status = 'accepted'"),
        ),
        # A patient is asked about a given slot once; makes a re-run fill job harmless.
        sa.UniqueConstraint("slot_id", "patient_id"),
        sa.Index("ix_offer_patient_status", "patient_id", "status"),
        sa.Index("ix_offer_slot_status", "slot_id", "status"),
    )

    slot_id: Mapped[int] = mapped_column(sa.ForeignKey("slot.id"))
    waitlist_entry_id: Mapped[int] = mapped_column(sa.ForeignKey("waitlist_entry.id"))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"))
    status: Mapped[OfferStatus] = mapped_column(
        enum_column(OfferStatus, "offer_status"), default=OfferStatus.PENDING
    )
    wave: Mapped[int]
    #: Ranking score and the reasons behind it, shown to staff.
    score: Mapped[int] = mapped_column(default=0)
    score_reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)
    window_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(sa.String(40))

    slot: Mapped[Slot] = relationship(foreign_keys=[slot_id])
    patient: Mapped[Patient] = relationship()
    waitlist_entry: Mapped[WaitlistEntry] = relationship()
