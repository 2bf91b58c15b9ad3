"""Patients, their waitlist entries and flags."""

from __future__ import annotations

from datetime import date, datetime, time

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import PkMixin, TimestampMixin, UTCDateTime, db, enum_column
from portal.models.enums import FlagKind, TimezoneSource, WaitlistStatus
from portal.models.scheduling import Location, Practitioner, Service


class Patient(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "patient"

    name: Mapped[str] = mapped_column(sa.String(120))
    #: As entered; kept so staff can fix a number that failed validation.
    phone_raw: Mapped[str] = mapped_column(sa.String(40), default="")
    #: E.164, only when ``phonenumbers`` judged it valid.
    phone_e164: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    timezone_source: Mapped[TimezoneSource] = mapped_column(
        enum_column(TimezoneSource, "timezone_source")
    )
    home_location_id: Mapped[int | None] = mapped_column(sa.ForeignKey("location.id"))
    sms_opt_out: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    deposit_required: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    prepayment_required: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: The Stripe customer a Checkout payment saved a card for (off-session fees).
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.String(255))

    home_location: Mapped[Location | None] = relationship()

    @property
    def first_name(self) -> str:
        """What messages and pages greet the patient with."""
        parts = (self.name or "").split()
        return parts[0] if parts else "there"

    def __repr__(self) -> str:  # never the name or number: reprs end up in logs
        return f"<Patient {self.id}>"


class WaitlistEntry(PkMixin, TimestampMixin, db.Model):
    """One wish for a service at a location; ``windows`` are weekly local-time ranges.

    ``windows`` is a list of ``{"weekday": 0-6 (Monday=0), "start": "HH:MM", "end": "HH:MM"}``
    in the patient's time zone; empty means any time.
    """

    __tablename__ = "waitlist_entry"
    __table_args__ = (
        sa.Index(
            "uq_waitlist_entry_one_active",
            "patient_id",
            "service_id",
            "location_id",
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
        ),
        sa.Index("ix_waitlist_entry_match", "service_id", "location_id", "status"),
        sa.CheckConstraint(
            "earliest IS NULL OR latest IS NULL OR earliest <= latest", name="range_ordered"
        ),
    )

    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    service_id: Mapped[int] = mapped_column(sa.ForeignKey("service.id"))
    location_id: Mapped[int] = mapped_column(sa.ForeignKey("location.id"))
    preferred_practitioner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("practitioner.id"))
    earliest: Mapped[date | None]
    latest: Mapped[date | None]
    windows: Mapped[list[dict]] = mapped_column(JSONB, default=list, server_default="[]")
    preferred_time: Mapped[time | None]
    short_notice_ok: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: Staff-set boost; higher is offered earlier.
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    status: Mapped[WaitlistStatus] = mapped_column(
        enum_column(WaitlistStatus, "waitlist_status"), default=WaitlistStatus.ACTIVE
    )
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    service: Mapped[Service] = relationship()
    location: Mapped[Location] = relationship()
    preferred_practitioner: Mapped[Practitioner | None] = relationship()


class PatientFlag(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "patient_flag"
    __table_args__ = (
        sa.Index(
            "uq_patient_flag_one_open",
            "patient_id",
            "kind",
            unique=True,
            postgresql_where=sa.text("resolved_at IS NULL"),
        ),
    )

    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    kind: Mapped[FlagKind] = mapped_column(enum_column(FlagKind, "flag_kind"))
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    resolution_notes: Mapped[str] = mapped_column(sa.Text, default="")

    patient: Mapped[Patient] = relationship()
