"""Money owed by patients: deposits, prepayments, cancellation fees (integer cents)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import PkMixin, TimestampMixin, UTCDateTime, db, enum_column
from portal.models.enums import ChargeKind, ChargeStatus
from portal.models.patients import Patient


class Charge(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "charge"
    __table_args__ = (sa.CheckConstraint("amount_cents > 0", name="amount_positive"),)

    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    appointment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("appointment.id"))
    offer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("offer.id"))
    kind: Mapped[ChargeKind] = mapped_column(enum_column(ChargeKind, "charge_kind"))
    amount_cents: Mapped[int]
    status: Mapped[ChargeStatus] = mapped_column(
        enum_column(ChargeStatus, "charge_status"), default=ChargeStatus.PENDING
    )
    #: Derived from what is charged for (e.g. ``cancel-fee:appointment:42``) so a retry
    #: can never charge twice.
    idempotency_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    collected_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))

    patient: Mapped[Patient] = relationship()
