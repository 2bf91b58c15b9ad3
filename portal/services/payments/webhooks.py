"""What Stripe's signed events mean for the ledger and the booking.

Events may arrive twice or out of order. Each outcome is a ledger step with an
idempotency key derived from the charge, so a duplicate appends nothing, and a step
the charge's status forbids (a failure after a success) is ignored: a status never
moves backwards. ``checkout.session.completed`` completes the held booking under the
slot's lock; if the hold has already lapsed the payment is recorded and refunded after
commit, and the slot — perhaps booked by someone else meanwhile — is left alone. A
payment for a charge already settled another way (taken at the desk, or paid online
before with another card) is a second payment: it is recorded on a charge of its own
(``duplicate_of_id``) and refunded. Only this very payment arriving again is a duplicate.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Charge, Patient
from portal.models.enums import ChargeKind, ChargeStatus, PaymentProviderName
from portal.queue import schedule
from portal.services import holds, ledger
from portal.services.audit import Action, record
from portal.services.booking import lost_race
from portal.services.errors import DomainError
from portal.services.payments import collect
from portal.services.payments.collect import PROVIDER_ACTOR

log = logging.getLogger(__name__)


def handle_event(event: dict[str, Any], now: datetime | None = None) -> str:
    """Apply one verified Stripe event; return what it did (for logs and tests)."""
    now = now or now_utc()
    kind = event.get("type")
    obj = (event.get("data") or {}).get("object") or {}
    if kind == "checkout.session.completed":
        return _checkout_completed(obj, now)
    if kind == "payment_intent.succeeded":
        return _intent_succeeded(obj, now)
    if kind == "payment_intent.payment_failed":
        return _intent_failed(obj, now)
    return "ignored"


def _charge_for(obj: dict[str, Any]) -> Charge | None:
    raw = str((obj.get("metadata") or {}).get("charge_id") or "")
    if not raw.isdigit() or len(raw) > 10:
        return None
    return db.session.get(Charge, int(raw))


def _checkout_completed(session: dict[str, Any], now: datetime) -> str:
    charge = _charge_for(session)
    if charge is None or charge.offer_id is None:
        return "unknown charge"
    if session.get("payment_status") != "paid":
        return "not paid yet"
    outcome = _record_payment(charge, _payment_ref(session.get("payment_intent")), now)
    # Last: a booking locks the slot, then the patient; saving the card locks the patient
    # (taking it first, a payment racing the desk's booking of the same hold deadlocked).
    _save_customer(charge.patient_id, session.get("customer"))
    return outcome


def _payment_ref(value: Any) -> str | None:
    """The provider's id of a payment, as an event gives it (None when it is no id)."""
    return value if isinstance(value, str) and 0 < len(value) <= 100 else None


def _record_payment(charge: Charge, intent: str | None, now: datetime) -> str:
    """Book the hold ``charge`` waits for, or record the payment and refund it.

    ``collect.record_success`` tells this payment seen before ("duplicate") from one for
    a charge settled another way (a second payment, refunded) by the ledger itself.
    """
    if ledger.status_of(charge.id) == ChargeStatus.OWED:
        try:
            with db.session.begin_nested():
                holds.complete_hold(
                    charge.offer_id,
                    actor=PROVIDER_ACTOR,
                    now=now,
                    provider=PaymentProviderName.STRIPE,
                    provider_ref=intent,
                )
            return "booked"
        except DomainError as exc:
            log.info("paid hold for charge %s could not book (%s)", charge.id, exc.code)
        except sa.exc.DBAPIError as exc:
            # A lost race the database caught (an index, the booking check) means the
            # same as one the code caught; a deadlock reruns the whole event instead.
            conflict = lost_race(exc)
            if conflict is None or conflict.code == "busy_retry":
                raise
            log.info("paid hold for charge %s could not book (%s)", charge.id, conflict.code)
    # The hold lapsed (or the slot went) before the payment landed: keep the record
    # straight — it was paid — and give the money back. Answering anything but 2xx
    # would only make Stripe send the event again, for ever.
    # (A duplicate of this event asked for the refund; ``settle_payments`` redoes a lost one.)
    outcome = collect.record_success(
        charge, intent, note="paid after the hold ended; refunding", now=now
    )
    if outcome != "recorded":
        return outcome
    schedule("refund_charge", charge.id)
    return "refunding"


def _save_customer(patient_id: int, customer_id: Any) -> None:
    if not isinstance(customer_id, str) or not customer_id or len(customer_id) > 255:
        return
    patient = db.session.get(Patient, patient_id)
    if patient is not None and patient.stripe_customer_id != customer_id:
        patient.stripe_customer_id = customer_id
        record(PROVIDER_ACTOR, Action.PATIENT_CARD_SAVED, patient, after={"provider": "stripe"})


def _intent_succeeded(intent: dict[str, Any], now: datetime) -> str:
    charge = _charge_for(intent)
    if charge is None or charge.kind != ChargeKind.CANCELLATION_FEE:
        return "ignored"  # holds complete through checkout.session.completed
    outcome = collect.record_success(
        charge, _payment_ref(intent.get("id")), note="charged to the saved card", now=now
    )
    return "succeeded" if outcome == "recorded" else outcome


def _intent_failed(intent: dict[str, Any], now: datetime) -> str:
    charge = _charge_for(intent)
    if charge is None or charge.kind != ChargeKind.CANCELLATION_FEE:
        return "ignored"
    if ledger.status_of(charge.id) != ChargeStatus.OWED:
        return "ignored"  # already failed, paid or waived: never backwards
    ledger.append(
        charge.id,
        ChargeStatus.FAILED,
        key=f"{charge.idempotency_key}:failed:{intent.get('id') or 'offsession'}",
        actor=PROVIDER_ACTOR,
        provider=PaymentProviderName.STRIPE,
        provider_ref=intent.get("id"),
        note="the saved card was declined; owed at the desk",
        now=now,
    )
    return "failed"
