"""Appointments and the offers that fill slots."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import PkMixin, TimestampMixin, UTCDateTime, db, enum_column, now_utc
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    FeeTier,
    OfferMode,
    OfferStatus,
)
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
        # An accepted offer makes one booking. (Not "one accepted offer per slot": a
        # booking cancelled later leaves its offer accepted — the patient did accept —
        # and the reopened slot must still be bookable through a new offer. One live
        # booking per slot is the index above.)
        sa.Index(
            "uq_appointment_one_per_offer",
            "offer_id",
            unique=True,
            postgresql_where=sa.text("offer_id IS NOT NULL"),
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
        # Analytics: every appointment of a slot (cancelled ones too), and by start.
        sa.Index("ix_appointment_slot_id", "slot_id"),
        sa.Index("ix_appointment_starts_at", "starts_at"),
        # The no-show sweep reads only appointments still awaiting arrival, by start:
        # its cost follows the due rows, not the table (bench/sweep.py).
        sa.Index(
            "ix_appointment_awaiting_arrival",
            "starts_at",
            postgresql_where=sa.text("status IN ('booked', 'confirmed')"),
        ),
        # One discounted rebooking per no-show (while it stands).
        sa.Index(
            "uq_appointment_one_rebooking",
            "rebooked_from_id",
            unique=True,
            postgresql_where=sa.text(
                "rebooked_from_id IS NOT NULL AND status NOT IN ('cancelled', 'no_show')"
            ),
        ),
        sa.CheckConstraint(
            "cancellation_fee_cents IS NULL OR cancellation_fee_cents >= 0",
            name="fee_not_negative",
        ),
        sa.CheckConstraint(
            "discount_percent IS NULL OR (discount_percent > 0 AND discount_percent <= 100)",
            name="discount_in_range",
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
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    no_show_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The slot's start, copied by a database trigger (migration 0100) on every insert
    #: and whenever the slot moves, so the no-show sweep can use one partial index.
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(200))
    #: The patient cancelled (themselves, or staff for them) rather than the clinic.
    cancelled_by_patient: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: Which cancellation rule applied, and the fee it came to (0 when free or waived).
    cancellation_tier: Mapped[FeeTier | None] = mapped_column(enum_column(FeeTier, "fee_tier"))
    cancellation_fee_cents: Mapped[int | None]
    grace_cancellation: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: A rebooking discount (percent of the service price), e.g. after a first no-show.
    discount_percent: Mapped[int | None]
    #: The no-show this appointment rebooked through the discount link.
    rebooked_from_id: Mapped[int | None] = mapped_column(sa.ForeignKey("appointment.id"))
    #: The calendar entry's SEQUENCE (RFC 5545): bumped whenever the patient's copy changes.
    calendar_sequence: Mapped[int] = mapped_column(default=0, server_default="0")

    slot: Mapped[Slot] = relationship()
    patient: Mapped[Patient] = relationship()
    offer: Mapped[Offer | None] = relationship(foreign_keys=[offer_id])


class Offer(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "offer"
    __table_args__ = (
        # A patient is asked about a given slot once; makes a re-run fill job harmless.
        sa.UniqueConstraint("slot_id", "patient_id"),
        sa.Index("ix_offer_patient_status", "patient_id", "status"),
        sa.Index("ix_offer_slot_status", "slot_id", "status"),
        sa.Index("ix_offer_created_at", "created_at"),
    )

    slot_id: Mapped[int] = mapped_column(sa.ForeignKey("slot.id"))
    waitlist_entry_id: Mapped[int] = mapped_column(sa.ForeignKey("waitlist_entry.id"))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"))
    status: Mapped[OfferStatus] = mapped_column(
        enum_column(OfferStatus, "offer_status"), default=OfferStatus.PENDING
    )
    wave: Mapped[int]
    #: The category's offer mode when the offer was made (analytics compare modes).
    mode: Mapped[OfferMode | None] = mapped_column(enum_column(OfferMode, "offer_mode"))
    #: Ranking score and the reasons behind it, shown to staff.
    score: Mapped[int] = mapped_column(default=0)
    score_reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)
    #: The learned acceptance estimate when the offer was made (calibration page).
    predicted_acceptance: Mapped[float | None] = mapped_column(sa.Float)
    window_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(sa.String(40))

    slot: Mapped[Slot] = relationship(foreign_keys=[slot_id])
    patient: Mapped[Patient] = relationship()
    waitlist_entry: Mapped[WaitlistEntry] = relationship()
