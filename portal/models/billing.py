"""Money patients owe: an append-only ledger in integer cents (SPEC §5).

A ``Charge`` is what is owed (a deposit, a prepayment, a cancellation fee), written
once and never changed. What became of it is a sequence of ``ChargeEntry`` rows —
``owed`` first, then ``succeeded``, ``failed``, ``waived`` or ``refunded`` — also
written once each (database triggers refuse UPDATE and DELETE on both tables). A
charge's status is its latest entry. Every charge and every entry carries a unique
idempotency key, so a retried request, job or webhook can never charge twice.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import PkMixin, UTCDateTime, db, enum_column, now_utc
from portal.models.enums import ChargeKind, ChargeStatus, PaymentProviderName
from portal.models.patients import Patient


class Charge(PkMixin, db.Model):
    __tablename__ = "charge"
    __table_args__ = (
        sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
        sa.Index("ix_charge_created_at", "created_at"),
    )

    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    appointment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("appointment.id"), index=True)
    offer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("offer.id"), index=True)
    kind: Mapped[ChargeKind] = mapped_column(enum_column(ChargeKind, "charge_kind"))
    amount_cents: Mapped[int]
    #: Derived from what is charged for (e.g. ``cancellation_fee:appointment:42``) so a
    #: retry can never open the same charge twice.
    idempotency_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    #: Set on a payment the provider took for a charge already settled another way (paid
    #: at the desk, or online twice): it is recorded here, then refunded.
    duplicate_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("charge.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    patient: Mapped[Patient] = relationship()


class ChargeEntry(PkMixin, db.Model):
    """One step in a charge's life; the latest (highest id) is its status."""

    __tablename__ = "charge_entry"
    __table_args__ = (
        sa.CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
        # Whatever the code does, a charge is paid at most once and refunded at most once.
        sa.Index(
            "uq_charge_entry_one_success",
            "charge_id",
            unique=True,
            postgresql_where=sa.text("status = 'succeeded'"),
        ),
        sa.Index(
            "uq_charge_entry_one_refund",
            "charge_id",
            unique=True,
            postgresql_where=sa.text("status = 'refunded'"),
        ),
        sa.Index("ix_charge_entry_charge_id", "charge_id", "id"),
        # One payment the provider took is recorded as paid once, on one charge.
        sa.Index(
            "uq_charge_entry_one_success_per_payment",
            "provider",
            "provider_ref",
            unique=True,
            postgresql_where=sa.text("status = 'succeeded' AND provider_ref IS NOT NULL"),
        ),
    )

    charge_id: Mapped[int] = mapped_column(sa.ForeignKey("charge.id"))
    status: Mapped[ChargeStatus] = mapped_column(enum_column(ChargeStatus, "charge_status"))
    amount_cents: Mapped[int]
    provider: Mapped[PaymentProviderName] = mapped_column(
        enum_column(PaymentProviderName, "payment_provider")
    )
    #: The provider's id for what happened (a Checkout session, PaymentIntent, refund).
    provider_ref: Mapped[str | None] = mapped_column(sa.String(255))
    idempotency_key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    charge: Mapped[Charge] = relationship()
