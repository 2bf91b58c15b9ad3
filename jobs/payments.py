"""Payment jobs (queue ``default``): collect a fee off-session, refund a payment, and
every minute settle what a lost job left undone.

Both run after the commit that asked for them, call the provider outside any
transaction, and are retried (same idempotency key) when the provider times out.
"""

from __future__ import annotations

from datetime import datetime

from jobs import job
from portal.db import db, now_utc
from portal.queue import enqueue_unless_waiting
from portal.services.payments import collect, settle
from portal.services.payments.provider import ProviderError


class RetryLater(Exception):
    """A transient provider error: RQ runs the job again after its backoff."""


@job
def collect_charge(charge_id: int) -> str:
    """Charge a cancellation fee to the patient's saved card, if there is one."""
    try:
        outcome = collect.collect_off_session(charge_id)
    except ProviderError as exc:
        db.session.rollback()
        if exc.transient:
            raise RetryLater(f"charge {charge_id}: {exc}") from None
        return f"provider refused: {exc}"
    db.session.commit()
    return outcome


@job
def refund_charge(charge_id: int) -> str:
    """Refund a payment that could not buy what it was for (a lapsed hold)."""
    try:
        outcome = collect.refund(charge_id, note="the hold had ended before the payment")
    except ProviderError as exc:
        db.session.rollback()
        if exc.transient:
            raise RetryLater(f"refund {charge_id}: {exc}") from None
        return f"provider refused: {exc}"
    db.session.commit()
    return outcome


@job
def settle_payments(now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue the refunds and collections whose jobs were lost (every minute)."""
    now = now or now_utc()
    refunds, collections = settle.refunds_due(now), settle.collections_due(now)
    db.session.rollback()
    return {
        "refunds": sum(enqueue_unless_waiting("refund_charge", i) for i in refunds),
        "collections": sum(enqueue_unless_waiting("collect_charge", i) for i in collections),
    }
