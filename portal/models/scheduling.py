"""Where and when care happens: locations, practitioners, services, slots, closures, policies."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import PkMixin, TimestampMixin, UTCDateTime, db, enum_column
from portal.models.enums import FeeKind, OfferMode, SlotStatus


class Location(PkMixin, db.Model):
    __tablename__ = "location"

    name: Mapped[str] = mapped_column(sa.String(120))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    phone: Mapped[str] = mapped_column(sa.String(32), default="")
    address: Mapped[str] = mapped_column(sa.String(240), default="")
    #: Weekly opening hours in the location's zone, like waitlist windows:
    #: ``[{"weekday": 0-6 (Monday=0), "start": "HH:MM", "end": "HH:MM"}]``; empty = not set.
    opening_hours: Mapped[list[dict]] = mapped_column(JSONB, default=list, server_default="[]")

    practitioners: Mapped[list[Practitioner]] = relationship(back_populates="location")

    def __repr__(self) -> str:
        return f"<Location {self.id} {self.timezone}>"


#: Which services each practitioner performs (the clinic's catalogue).
practitioner_service = sa.Table(
    "practitioner_service",
    db.metadata,
    sa.Column(
        "practitioner_id",
        sa.ForeignKey("practitioner.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("service_id", sa.ForeignKey("service.id", ondelete="CASCADE"), primary_key=True),
    sa.Index("ix_practitioner_service_service_id", "service_id"),
)


class Practitioner(PkMixin, db.Model):
    __tablename__ = "practitioner"

    name: Mapped[str] = mapped_column(sa.String(120))
    location_id: Mapped[int] = mapped_column(sa.ForeignKey("location.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    location: Mapped[Location] = relationship(back_populates="practitioners")
    services: Mapped[list[Service]] = relationship(
        secondary=practitioner_service, order_by="Service.name"
    )


class Service(PkMixin, db.Model):
    __tablename__ = "service"
    __table_args__ = (
        sa.CheckConstraint("price_cents >= 0", name="price_not_negative"),
        sa.CheckConstraint("duration_minutes > 0", name="duration_positive"),
        sa.CheckConstraint("category ~ '^[a-z][a-z0-9_]*$'", name="category_slug"),
    )

    name: Mapped[str] = mapped_column(sa.String(120))
    category: Mapped[str] = mapped_column(sa.String(40), index=True)
    duration_minutes: Mapped[int]
    #: The shortest remainder of a slot still worth offering (no-show refills).
    min_fill_minutes: Mapped[int] = mapped_column(default=30, server_default="30")
    price_cents: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())


class CancellationPolicy(PkMixin, TimestampMixin, db.Model):
    """Fee rules for one service category; tiers are explicit so none can be unreachable."""

    __tablename__ = "cancellation_policy"
    __table_args__ = (
        sa.CheckConstraint("grace_minutes >= 0", name="grace_not_negative"),
        sa.CheckConstraint("late_fee_value >= 0", name="fee_not_negative"),
        sa.CheckConstraint(
            "late_fee_kind <> 'percent' OR late_fee_value <= 100", name="percent_at_most_100"
        ),
        sa.CheckConstraint(
            "full_charge_hours >= 0 AND full_charge_hours <= notice_hours", name="tiers_ordered"
        ),
    )

    category: Mapped[str] = mapped_column(sa.String(40), unique=True)
    grace_minutes: Mapped[int] = mapped_column(default=15)
    grace_free: Mapped[bool] = mapped_column(default=True)
    late_fee_kind: Mapped[FeeKind] = mapped_column(enum_column(FeeKind, "fee_kind"))
    #: A percentage of the service price (0–100) or a fixed amount in cents.
    late_fee_value: Mapped[int]
    notice_hours: Mapped[int] = mapped_column(default=24)
    full_charge_hours: Mapped[int] = mapped_column(default=4)


class OfferPolicy(PkMixin, TimestampMixin, db.Model):
    """How a category's opened slots are offered: mode, wave size, windows, cutoff."""

    __tablename__ = "offer_policy"
    __table_args__ = (
        sa.CheckConstraint("wave_size >= 1", name="wave_size_positive"),
        sa.CheckConstraint("window_minutes >= 1", name="window_positive"),
        sa.CheckConstraint("near_window_minutes >= 1", name="near_window_positive"),
        sa.CheckConstraint("cutoff_minutes >= 0", name="cutoff_not_negative"),
    )

    category: Mapped[str] = mapped_column(sa.String(40), unique=True)
    mode: Mapped[OfferMode] = mapped_column(enum_column(OfferMode, "offer_mode"))
    wave_size: Mapped[int] = mapped_column(default=3)
    window_minutes: Mapped[int] = mapped_column(default=30)
    #: When the slot starts within ``near_hours``, waves get the shorter window.
    near_hours: Mapped[int] = mapped_column(default=4)
    near_window_minutes: Mapped[int] = mapped_column(default=10)
    #: No new offers once the slot starts within this many minutes.
    cutoff_minutes: Mapped[int] = mapped_column(default=60)


class Slot(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "slot"
    __table_args__ = (
        sa.CheckConstraint("end_at > start_at", name="ends_after_start"),
        sa.CheckConstraint(
            "(status = 'held') = (hold_expires_at IS NOT NULL)", name="hold_has_expiry"
        ),
        sa.Index("ix_slot_location_start", "location_id", "start_at"),
        sa.Index("ix_slot_service_status_start", "service_id", "status", "start_at"),
        sa.Index("ix_slot_practitioner_start", "practitioner_id", "start_at"),
        sa.Index("ix_slot_opened_at", "opened_at"),
    )

    location_id: Mapped[int] = mapped_column(sa.ForeignKey("location.id"))
    practitioner_id: Mapped[int] = mapped_column(sa.ForeignKey("practitioner.id"))
    service_id: Mapped[int] = mapped_column(sa.ForeignKey("service.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[SlotStatus] = mapped_column(
        enum_column(SlotStatus, "slot_status"), default=SlotStatus.OPEN
    )
    #: When the slot last became open (for time-to-fill analytics).
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The wave most recently sent for the current opening (0 = none yet).
    current_wave: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Set when filling stopped with nobody left to ask (cleared when re-opened).
    fill_exhausted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Why, when it stopped: waiting patients left out, counted per reason
    #: (``matching.Exclusion`` values), e.g. ``{"daily_cap": 4, "busy": 2}``.
    fill_exhausted_reasons: Mapped[dict[str, int] | None] = mapped_column(JSONB)
    hold_offer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("offer.id", use_alter=True, ondelete="SET NULL")
    )
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The no-show slot this one is the remainder of (freed time): offered at once to
    #: patients who accept short notice, with no offer cutoff before its start.
    freed_from_id: Mapped[int | None] = mapped_column(sa.ForeignKey("slot.id"))

    location: Mapped[Location] = relationship()
    practitioner: Mapped[Practitioner] = relationship()
    service: Mapped[Service] = relationship()

    def __repr__(self) -> str:
        return f"<Slot {self.id} {self.status} {self.start_at:%Y-%m-%dT%H:%MZ}>"


class Closure(PkMixin, TimestampMixin, db.Model):
    """A holiday or reduced-hours window; ``location_id`` NULL means every location."""

    __tablename__ = "closure"
    __table_args__ = (sa.CheckConstraint("end_at > start_at", name="ends_after_start"),)

    location_id: Mapped[int | None] = mapped_column(sa.ForeignKey("location.id"), index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(sa.String(200), default="")

    location: Mapped[Location | None] = relationship()


class Setting(db.Model):
    """A practice-wide tunable (quiet hours, daily caps, scoring weights) stored as JSON."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    value: Mapped[dict | list | int | str | bool] = mapped_column(sa.JSON)
