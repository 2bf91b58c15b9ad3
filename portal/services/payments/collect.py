"""Collecting and refunding through the provider, and the desk recording payments.

``collect_off_session`` and ``refund`` read what they need, end the transaction, call
the provider with an idempotency key, then append the outcome to the ledger in a new
transaction (the caller commits). A transient failure (a timeout) raises
``ProviderError(transient=True)``: the job retries with the same key, so Stripe
answers with the first attempt's outcome instead of charging again.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Charge, ChargeEntry, Patient
from portal.models.enums import ChargeStatus, PaymentProviderName
from portal.queue import schedule
from portal.services import ledger
from portal.services.audit import Actor
from portal.services.errors import Conflict
from portal.services.payments.provider import get_provider

log = logging.getLogger(__name__)

PROVIDER_ACTOR = Actor.webhook("stripe")


def collect_off_session(charge_id: int, now: datetime | None = None) -> str:
    """Charge a due fee to the patient's saved card; without one it stays owed."""
    provider = get_provider()
    charge = db.session.get(Charge, charge_id)
    if charge is None or ledger.status_of(charge.id) != ChargeStatus.OWED:
        return "nothing to collect"
    if provider is None:
        return "owed at the desk (no payment provider)"
    customer_id = db.session.scalar(
        sa.select(Patient.stripe_customer_id).where(Patient.id == charge.patient_id)
    )
    if not customer_id:
        return "owed at the desk (no saved card)"
    db.session.rollback()  # no transaction stays open across the provider call
    result = provider.charge_saved_card(
        charge=charge, customer_id=customer_id, idempotency_key=f"collect:charge:{charge_id}"
    )
    if result.succeeded:
        outcome = record_success(
            charge, result.ref, note="charged to the saved card", now=now or now_utc()
        )
        return "succeeded" if outcome in ("recorded", "duplicate") else outcome
    ledger.append(
        charge_id,
        ChargeStatus.FAILED,
        key=f"{charge.idempotency_key}:failed:{result.ref or 'offsession'}",
        actor=PROVIDER_ACTOR,
        provider=PaymentProviderName.STRIPE,
        provider_ref=result.ref,
        note=f"{result.reason}; owed at the desk"[:200],
        now=now,
    )
    return "failed"


def payment_ref(charge_id: int) -> str | None:
    """The provider's id of the payment that settled a charge, if a provider took it."""
    return db.session.scalar(
        sa.select(ChargeEntry.provider_ref).where(
            ChargeEntry.charge_id == charge_id,
            ChargeEntry.status == ChargeStatus.SUCCEEDED,
            ChargeEntry.provider == PaymentProviderName.STRIPE,
        )
    )


def record_success(charge: Charge, ref: str | None, *, note: str, now: datetime) -> str:
    """Record provider payment ``ref`` as what settled ``charge``: "recorded", "duplicate"
    (it was already), or — when the charge was settled another way (the desk, a waiver,
    another payment; a ledger entry is never changed, so the entry found says which) —
    what ``second_payment`` did with it."""
    try:
        step = ledger.append(
            charge.id,
            ChargeStatus.SUCCEEDED,
            key=f"{charge.idempotency_key}:succeeded",
            actor=PROVIDER_ACTOR,
            provider=PaymentProviderName.STRIPE,
            provider_ref=ref,
            note=note,
            now=now,
        )
    except ledger.ChargeStepRefused:  # waived: nothing is due
        step = None
    if step is None or (ref is not None and step.entry.provider_ref != ref):
        return second_payment(charge, ref, now) if ref else "duplicate"
    return "recorded" if step.new else "duplicate"


def second_payment(charge: Charge, ref: str, now: datetime) -> str:
    """A provider payment ``ref`` for ``charge``, which was settled another way (the desk,
    a waiver, another payment): record it on a charge of its own and refund it, once
    (the charge's key is derived from ``ref``: a repeat finds it, "duplicate")."""
    extra = ledger.open_charge(
        patient_id=charge.patient_id,
        kind=charge.kind,
        amount_cents=charge.amount_cents,
        key=f"{charge.idempotency_key}:again:{ref}"[:120],
        description=f"Second payment for charge {charge.id}: goes back to the card",
        actor=PROVIDER_ACTOR,
        appointment_id=charge.appointment_id,
        duplicate_of_id=charge.id,
        now=now,
    )
    note = f"a second payment for charge {charge.id}, already settled; refunding"
    if record_success(extra, ref, note=note, now=now) != "recorded":
        return "duplicate"  # its charge records this very payment already
    log.info("charge %s was paid again (charge %s): refunding", charge.id, extra.id)
    schedule("refund_charge", extra.id)
    return "refunding"


def _booked(offer_id: int) -> bool:
    return (
        db.session.scalar(sa.select(Appointment.id).where(Appointment.offer_id == offer_id))
        is not None
    )


def refund(charge_id: int, *, note: str, now: datetime | None = None) -> str:
    """Give a provider-taken payment back (a paid hold that had lapsed, say)."""
    charge = db.session.get(Charge, charge_id)
    if charge is None or ledger.status_of(charge.id) != ChargeStatus.SUCCEEDED:
        return "nothing to refund"
    if charge.offer_id is not None and _booked(charge.offer_id):
        return "kept for its booking"  # the payment completed its hold after all
    if charge.duplicate_of_id is not None:
        note = f"paid twice: charge {charge.duplicate_of_id} was settled already"
    ref = payment_ref(charge_id)
    provider = get_provider()
    if ref is None or provider is None:
        return "not a provider payment: refund at the desk"
    amount, key = charge.amount_cents, charge.idempotency_key
    db.session.rollback()
    refund_id = provider.refund(
        payment_ref=ref, amount_cents=amount, idempotency_key=f"refund:charge:{charge_id}"
    )
    ledger.append(
        charge_id,
        ChargeStatus.REFUNDED,
        key=f"{key}:refunded",
        actor=PROVIDER_ACTOR,
        provider=PaymentProviderName.STRIPE,
        provider_ref=refund_id,
        note=note,
        now=now,
    )
    return "refunded"


def record_at_desk(
    charge_id: int,
    status: ChargeStatus,
    *,
    actor: Actor,
    note: str = "",
    now: datetime | None = None,
) -> ledger.Step:
    """Staff record a due charge as paid at the desk, or waive it (audited)."""
    if status not in (ChargeStatus.SUCCEEDED, ChargeStatus.WAIVED):
        raise Conflict("The desk records a payment or a waiver.", code="charge_state")
    charge = db.session.get(Charge, charge_id)
    if charge is None:
        raise Conflict("No such charge.", code="unknown_charge")
    return ledger.append(
        charge_id,
        status,
        key=f"{charge.idempotency_key}:{status.value}",
        actor=actor,
        provider=PaymentProviderName.DESK,
        note=note or f"{status.value} at the desk",
        now=now or now_utc(),
    )
