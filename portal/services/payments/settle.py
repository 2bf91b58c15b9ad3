"""Charges a lost job left unsettled: paid holds still to refund, fees still to collect.

The refund and collection jobs are enqueued after the commit that asks for them; if
Redis loses them (restarted empty), nothing else would ever run them. The ledger says
what is due, so the ``settle_payments`` sweep finds these charges and enqueues the jobs
again (both are idempotent: they re-check the charge and reuse their idempotency keys).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from portal.db import db
from portal.models import Appointment, Charge, ChargeEntry, Patient
from portal.models.enums import ChargeKind, ChargeStatus, PaymentProviderName
from portal.services.payments.provider import get_provider

#: The job enqueued at commit gets this long before the sweep acts. Short: the sweep
#: enqueues through ``enqueue_unless_waiting``, which leaves a job still queued, waiting
#: for a retry or running alone, so acting early doubles nothing (and the jobs are
#: idempotent); a refund Redis lost is redone within about a minute, not three.
GRACE = timedelta(seconds=30)


def _latest_entries() -> sa.Subquery:
    return (
        sa.select(ChargeEntry.charge_id, sa.func.max(ChargeEntry.id).label("entry_id"))
        .group_by(ChargeEntry.charge_id)
        .subquery()
    )


def refunds_due(now: datetime) -> list[int]:
    """Payments Stripe took that were not refunded: for a hold that booked nothing, or a
    second payment for a charge already settled (``duplicate_of_id``: a deposit, a
    prepayment or a fee)."""
    latest, entry = _latest_entries(), aliased(ChargeEntry)
    booked = sa.select(Appointment.id).where(Appointment.offer_id == Charge.offer_id).exists()
    unbooked_hold = sa.and_(Charge.offer_id.is_not(None), ~booked)
    return list(
        db.session.scalars(
            sa.select(Charge.id)
            .join(latest, latest.c.charge_id == Charge.id)
            .join(entry, entry.id == latest.c.entry_id)
            .where(
                sa.or_(
                    sa.and_(
                        Charge.kind.in_((ChargeKind.DEPOSIT, ChargeKind.PREPAYMENT)), unbooked_hold
                    ),
                    Charge.duplicate_of_id.is_not(None),
                ),
                entry.status == ChargeStatus.SUCCEEDED,
                entry.provider == PaymentProviderName.STRIPE,
                entry.created_at <= now - GRACE,
            )
            .order_by(Charge.id)
        )
    )


def collections_due(now: datetime) -> list[int]:
    """Fees still owed by patients with a saved card, when a provider can charge it."""
    if get_provider() is None:
        return []  # the desk collects them
    latest, entry = _latest_entries(), aliased(ChargeEntry)
    return list(
        db.session.scalars(
            sa.select(Charge.id)
            .join(latest, latest.c.charge_id == Charge.id)
            .join(entry, entry.id == latest.c.entry_id)
            .join(Patient, Patient.id == Charge.patient_id)
            .where(
                Charge.kind == ChargeKind.CANCELLATION_FEE,
                entry.status == ChargeStatus.OWED,
                entry.created_at <= now - GRACE,
                Patient.stripe_customer_id.is_not(None),
            )
            .order_by(Charge.id)
        )
    )
