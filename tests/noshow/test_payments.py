"""Payments through Stripe (a loopback fake of its API, the real SDK): Checkout during a
hold, the signed webhook, duplicates and reorderings, a payment after the hold lapsed,
off-session fees, a provider timeout — and the ledger never edited, never doubled."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from jobs.payments import RetryLater, collect_charge, refund_charge, settle_payments
from jobs.worker import run_worker
from portal.db import db, now_utc
from portal.models import Appointment, ChargeEntry, Patient, Slot
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    ChargeStatus,
    SlotStatus,
    WaitlistStatus,
)
from portal.services import booking, holds, ledger, responses
from portal.services.audit import SYSTEM, Actor
from portal.services.cancellation import cancel_for_patient
from portal.services.payments.collect import record_at_desk
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.fakes.stripe_server import FakeStripe
from tests.patient.conftest import offer_token
from tests.races import assert_consistent

pytestmark = pytest.mark.usefixtures("app")
KEYS = ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "STRIPE_TIMEOUT_SECONDS")


@pytest.fixture
def stripe(app: Flask) -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    saved = {key: app.config.get(key) for key in KEYS}
    app.config.update(
        STRIPE_SECRET_KEY="sk_test_fake",
        STRIPE_WEBHOOK_SECRET=fake.webhook_secret,
        STRIPE_API_BASE=fake.base_url,
        STRIPE_TIMEOUT_SECONDS=1.0,
    )
    app.extensions.pop("portal_payment_provider", None)
    try:
        yield fake
    finally:
        app.config.update(saved)
        app.extensions.pop("portal_payment_provider", None)
        fake.stop()


def _held(deposit: bool = True):
    slot = f.slot()
    patient = f.patient(deposit_required=deposit, prepayment_required=not deposit)
    offer = f.offer(slot=slot, entry=f.waitlist_entry(patient=patient, slot=slot))
    outcome = responses.accept_offer(offer.id, actor=Actor.patient(patient.id))
    db.session.commit()
    assert outcome.held
    return slot, patient, offer, outcome.charge


def _pay(client: FlaskClient, offer) -> str:
    url = f"/o/{offer_token(offer)}"
    page = client.get(url).text
    assert "Pay $50.00 now" in page
    response = client.post(f"{url}/pay", data={"csrf_token": csrf_token_from(page)})
    assert response.status_code == 303
    return response.headers["Location"]


def _deliver(client: FlaskClient, fake: FakeStripe, event: dict, secret: str | None = None):
    payload, signature = fake.sign(event, secret)
    return client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )


def _session_id(fake: FakeStripe) -> str:
    (session_id,) = fake.sessions
    return session_id


def test_the_hold_page_pays_through_checkout_and_the_webhook_books(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    slot, patient, offer, charge = _held()
    first = _pay(client, offer)
    assert _pay(client, offer) == first  # same idempotency key: the same session
    assert first.startswith(stripe.base_url)
    session = stripe.sessions[_session_id(stripe)]
    assert session["metadata"]["charge_id"] == str(charge.id) and session["amount_total"] == 5000

    response = _deliver(client, stripe, stripe.complete(session["id"]))

    assert response.status_code == 200 and response.json["outcome"] == "booked"
    db.session.expire_all()
    assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED
    assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED
    assert db.session.get(Patient, patient.id).stripe_customer_id == "cus_test_saved"
    page = client.get(f"/o/{offer_token(offer)}", follow_redirects=True).text
    assert "booked" in page.lower()
    assert_consistent()


def test_duplicated_and_reordered_webhooks_book_once(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    slot, _, offer, charge = _held()
    _pay(client, offer)
    completed = stripe.complete(_session_id(stripe))
    expired = stripe.event("checkout.session.expired", {"id": _session_id(stripe)})
    stray = stripe.event("payment_intent.payment_failed", {"id": "pi_x", "metadata": {}})
    events = [completed, completed, expired, stray, completed]
    random.Random(9).shuffle(events)
    outcomes = [_deliver(client, stripe, e) for e in events]
    assert {r.status_code for r in outcomes} == {200}
    assert sorted(r.json["outcome"] for r in outcomes) == sorted(
        ["booked", "duplicate", "duplicate", "ignored", "ignored"]
    )
    db.session.expire_all()
    appointments = db.session.scalars(sa.select(Appointment).where(Appointment.slot_id == slot.id))
    assert len(list(appointments)) == 1
    statuses = db.session.scalars(
        sa.select(ChargeEntry.status)
        .where(ChargeEntry.charge_id == charge.id)
        .order_by(ChargeEntry.id)
    ).all()
    assert statuses == [ChargeStatus.OWED, ChargeStatus.SUCCEEDED]
    assert_consistent()


@pytest.mark.parametrize(
    "signature",
    [None, "t=1,v1=deadbeef", "garbage"],
)
def test_unsigned_or_badly_signed_webhooks_get_400(
    client: FlaskClient, stripe: FakeStripe, signature: str | None
) -> None:
    _, _, offer, _ = _held()
    event = stripe.event("checkout.session.completed", {"metadata": {"charge_id": "1"}})
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["Stripe-Signature"] = signature
    response = client.post("/webhooks/stripe", json=event, headers=headers)
    assert response.status_code == 400
    wrong = _deliver(client, stripe, event, secret="whsec_someone_else")
    assert wrong.status_code == 400
    db.session.expire_all()
    assert db.session.get(Slot, offer.slot_id).status == SlotStatus.HELD


def test_without_stripe_the_webhook_refuses_and_the_desk_records(client: FlaskClient) -> None:
    assert client.post("/webhooks/stripe", data=b"{}").status_code == 400
    _, _, offer, charge = _held()
    page = client.get(f"/o/{offer_token(offer)}").text
    assert "Pay $50.00 now" not in page and "Call the clinic" in page
    holds.complete_hold(offer.id, actor=Actor.staff(f.staff_user()))
    db.session.commit()
    assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED


def test_a_payment_after_the_hold_lapsed_is_refunded_and_nothing_double_books(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    slot, _, offer, charge = _held()
    _pay(client, offer)
    later = now_utc() + timedelta(seconds=120)
    assert holds.release_hold(slot.id, offer.id, actor=SYSTEM, now=later)
    other = f.patient()
    booking.book_slot(slot.id, other, source=AppointmentSource.STAFF, actor=SYSTEM)
    db.session.commit()
    assert ledger.status_of(charge.id) == ChargeStatus.FAILED

    response = _deliver(client, stripe, stripe.complete(_session_id(stripe)))
    assert response.json["outcome"] == "refunding"
    assert refund_charge(charge.id) == "refunded"
    assert refund_charge(charge.id) == "nothing to refund"  # a re-run job

    db.session.expire_all()
    assert [r["amount"] for r in stripe.refunds] == [5000]
    assert ledger.status_of(charge.id) == ChargeStatus.REFUNDED
    live = db.session.scalars(
        sa.select(Appointment).where(
            Appointment.slot_id == slot.id, Appointment.status != AppointmentStatus.CANCELLED
        )
    ).all()
    assert [a.patient_id for a in live] == [other.id]
    assert_consistent()


def _fee_with_card(customer: str | None = "cus_test_saved"):
    start = (now_utc() + timedelta(hours=2)).replace(second=0, microsecond=0)
    slot = f.slot(start_at=start, service=f.service(price_cents=40000))
    patient = f.patient(stripe_customer_id=customer)
    entry = f.waitlist_entry(patient=patient, slot=slot, status=WaitlistStatus.BOOKED)
    appt = f.appointment(
        slot=slot,
        patient=patient,
        booked_at=now_utc() - timedelta(days=2),
        waitlist_entry_id=entry.id,
    )
    db.session.commit()
    done = cancel_for_patient(appt.id, Actor.patient(patient.id))
    db.session.commit()
    return done.charge


def test_a_fee_is_charged_off_session_to_the_saved_card(stripe: FakeStripe) -> None:
    charge = _fee_with_card()
    assert collect_charge(charge.id) == "succeeded"
    assert collect_charge(charge.id) == "nothing to collect"
    assert [i["amount"] for i in stripe.intents.values()] == [40000]
    assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED


def test_a_provider_timeout_is_retried_with_the_same_key_and_charges_once(
    stripe: FakeStripe,
) -> None:
    charge = _fee_with_card()
    stripe.hang("/v1/payment_intents", 2.5)
    with pytest.raises(RetryLater):
        collect_charge(charge.id)
    assert ledger.status_of(charge.id) == ChargeStatus.OWED
    assert collect_charge(charge.id) == "succeeded"  # RQ's retry
    import time

    time.sleep(2)  # the hung first request finishes too: Stripe dedupes it by its key
    assert len(stripe.intents) == 1
    keys = [p for m, p in stripe.requests if p == "/v1/payment_intents"]
    assert len(keys) == 2


def test_a_declined_card_leaves_the_fee_owed_for_the_desk(stripe: FakeStripe) -> None:
    stripe.decline_customers.add("cus_declines")
    charge = _fee_with_card("cus_declines")
    assert collect_charge(charge.id) == "failed"
    assert ledger.status_of(charge.id) == ChargeStatus.FAILED
    staff = f.staff_user()
    record_at_desk(charge.id, ChargeStatus.SUCCEEDED, actor=Actor.staff(staff))
    db.session.commit()
    assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED


def test_without_a_saved_card_the_fee_stays_owed(stripe: FakeStripe) -> None:
    charge = _fee_with_card(None)
    assert collect_charge(charge.id) == "owed at the desk (no saved card)"
    assert ledger.status_of(charge.id) == ChargeStatus.OWED
    assert stripe.intents == {}


def test_fee_webhooks_reordered_never_move_backwards(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    charge = _fee_with_card()
    intent = {"id": "pi_test_fee", "metadata": {"charge_id": str(charge.id)}}
    succeeded = stripe.event("payment_intent.succeeded", intent)
    failed = stripe.event("payment_intent.payment_failed", intent)
    outcomes = [_deliver(client, stripe, e).json["outcome"] for e in (succeeded, failed, succeeded)]
    assert outcomes == ["succeeded", "ignored", "duplicate"]
    assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED


def test_refunds_and_fees_whose_jobs_redis_lost_are_settled_by_the_sweep(
    app: Flask, client: FlaskClient, stripe: FakeStripe
) -> None:
    """Found by the soak: a late payment's refund job lost with Redis was never redone —
    the patient paid for a slot they did not get and was never refunded."""
    slot, _, offer, paid_late = _held()
    _pay(client, offer)
    later = now_utc() + timedelta(seconds=120)
    assert holds.release_hold(slot.id, offer.id, actor=SYSTEM, now=later)
    db.session.commit()
    response = _deliver(client, stripe, stripe.complete(_session_id(stripe)))
    assert response.json["outcome"] == "refunding"
    fee = _fee_with_card()
    Redis.from_url(app.config["REDIS_URL"]).flushdb()  # Redis restarted empty: both jobs gone

    assert settle_payments(now_utc()) == {"refunds": 0, "collections": 0}  # not yet overdue
    tally = settle_payments(now_utc() + timedelta(minutes=3))
    assert tally == {"refunds": 1, "collections": 1}
    again = settle_payments(now_utc() + timedelta(minutes=3))
    assert again == {"refunds": 0, "collections": 0}  # their jobs wait in Redis: no doubles
    run_worker(app, burst=True, with_scheduler=False)

    db.session.expire_all()
    assert ledger.status_of(paid_late.id) == ChargeStatus.REFUNDED
    assert ledger.status_of(fee.id) == ChargeStatus.SUCCEEDED
    assert [r["amount"] for r in stripe.refunds] == [5000]
    assert [i["amount"] for i in stripe.intents.values()] == [40000]
    assert settle_payments(now_utc() + timedelta(minutes=3)) == {"refunds": 0, "collections": 0}


def test_a_payment_for_a_hold_whose_offer_was_withdrawn_is_refunded_not_refused(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    """The patient was booked elsewhere (their held offer withdrawn) before their payment
    landed: the payment is recorded and refunded. (The soak saw a late payment's webhook
    refused with 409 `slot_filled`; this case is not its cause, which is still open.)"""
    slot, patient, offer, charge = _held()
    _pay(client, offer)
    elsewhere = f.slot(
        start_at=slot.start_at + timedelta(hours=3),
        practitioner=slot.practitioner,
        service=slot.service,
    )
    booking.book_slot(elsewhere.id, patient, source=AppointmentSource.STAFF, actor=SYSTEM)
    db.session.commit()

    response = _deliver(client, stripe, stripe.complete(_session_id(stripe)))
    assert response.status_code == 200 and response.json["outcome"] == "refunding"
    assert refund_charge(charge.id) == "refunded"
    db.session.expire_all()
    assert ledger.status_of(charge.id) == ChargeStatus.REFUNDED
    assert [r["amount"] for r in stripe.refunds] == [5000]
    assert_consistent()
