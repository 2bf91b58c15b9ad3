"""Second payments for a settled charge: recorded, refunded once, never counted as charged."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from jobs.payments import refund_charge
from portal.db import db, now_utc
from portal.models import StaffUser
from portal.models.enums import ChargeStatus
from portal.services import analytics, holds, ledger
from portal.services.audit import SYSTEM, Actor
from portal.services.payments import collect, webhooks
from tests import factories as f
from tests.fakes.stripe_server import FakeStripe
from tests.noshow.test_late_payments import _accept
from tests.noshow.test_payments import _deliver, _fee_with_card, _pay, _session_id, stripe

pytestmark = pytest.mark.usefixtures("app")
__all__ = ["stripe"]


def _deposits() -> dict:
    today = now_utc().date()
    fees = analytics.figures(today - timedelta(days=2), today + timedelta(days=2)).fees
    (row,) = [r for r in fees["by_kind"] if r["kind"] == "deposit"] or [
        {"charges": 0, "charged": 0, "collected": 0}
    ]
    return {k: int(row[k]) for k in ("charges", "charged", "collected")}


def test_a_refunded_second_payment_is_not_counted_as_another_deposit_charged(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    """The dashboard's fees table: one deposit was asked for and kept. The second payment,
    given back, is not a second deposit charged (nor does it halve the collection rate)."""
    before = _deposits()
    slot = f.slot()
    offer, _ = _accept(slot, deposit=True)
    _pay(client, offer)
    holds.complete_hold(offer.id, actor=SYSTEM)  # the desk takes the deposit
    db.session.commit()
    assert _deliver(client, stripe, stripe.complete(_session_id(stripe))).json["outcome"] == (
        "refunding"
    )
    db.session.expire_all()
    (extra,) = [c for c, _ in ledger.charges_for_patient(offer.patient_id) if c.duplicate_of_id]
    assert refund_charge(extra.id) == "refunded"

    after = _deposits()
    assert {k: after[k] - before[k] for k in after} == {
        "charges": 1,
        "charged": 5000,
        "collected": 5000,
    }


def test_a_redelivery_reading_the_ledger_as_the_first_commits_is_a_duplicate(
    app: Flask, client: FlaskClient, stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deliveries of one event. The second reads ``_recorded`` (nothing yet), then the
    first books and commits, then the second reads the charge's status (succeeded) and
    takes its own payment for a *second* payment: it tries to record the same
    PaymentIntent again, on a new charge, to refund it."""
    slot = f.slot()
    offer, _ = _accept(slot, deposit=True)
    _pay(client, offer)
    event = stripe.complete(_session_id(stripe))
    first: list[str] = []

    def first_delivery() -> None:
        with app.app_context():
            try:
                first.append(webhooks.handle_event(event))
                db.session.commit()
            finally:
                db.session.remove()

    real, main = collect.payment_recorded, threading.current_thread()

    def recorded_while_the_first_commits(intent: str) -> bool:
        seen = real(intent)  # this delivery's read, before the first delivery commits
        if threading.current_thread() is not main or first:
            return seen  # the first delivery itself, or a later look
        thread = threading.Thread(target=first_delivery)
        thread.start()
        thread.join(30)
        return seen

    monkeypatch.setattr(collect, "payment_recorded", recorded_while_the_first_commits)

    second = webhooks.handle_event(event)  # the second delivery

    assert first == ["booked"]
    assert second == "duplicate"


def test_an_off_session_fee_the_desk_also_took_is_not_kept_unrecorded(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    """(Pre-existing, outside the diff, same rule.) The off-session charge of a fee times
    out; the desk takes the fee meanwhile; Stripe's charge went through after all. The
    PaymentIntent is another payment for a settled charge — ``_intent_succeeded`` still
    answers 'duplicate' for it, so it is neither in the ledger nor refunded."""
    import time

    from jobs.payments import RetryLater, collect_charge
    from portal.models.enums import ChargeStatus
    from portal.services.audit import Actor
    from portal.services.payments.collect import record_at_desk
    from tests.noshow.test_payments import _fee_with_card

    charge = _fee_with_card()
    stripe.hang("/v1/payment_intents", 2.5)
    with pytest.raises(RetryLater):
        collect_charge(charge.id)
    record_at_desk(charge.id, ChargeStatus.SUCCEEDED, actor=Actor.staff(f.staff_user()))
    db.session.commit()
    time.sleep(2)  # the hung request completes: Stripe took the fee from the card
    (intent_id,) = stripe.intents
    assert collect_charge(charge.id) == "nothing to collect"  # RQ's retry
    event = stripe.event(
        "payment_intent.succeeded", {"id": intent_id, "metadata": {"charge_id": str(charge.id)}}
    )

    answer = _deliver(client, stripe, event).json["outcome"]

    db.session.expire_all()
    assert (answer, collect.payment_recorded(intent_id)) == ("refunding", True)
    (extra,) = [c for c, _ in ledger.charges_for_patient(charge.patient_id) if c.duplicate_of_id]
    assert refund_charge(extra.id) == "refunded"
    assert [r["payment_intent"] for r in stripe.refunds] == [intent_id]
    assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED  # the desk's payment stands


@pytest.mark.parametrize("desk", ["paid", "waived"])
def test_a_card_charged_while_the_desk_settled_the_fee_is_given_back(
    app: Flask, stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch, desk: str
) -> None:
    """The fee job charges the saved card; meanwhile the desk takes the fee (or waives
    it). The job finds the charge settled when it records: the card's payment is a
    second payment, recorded on its own and refunded — not folded into the desk's."""
    from jobs.payments import collect_charge
    from portal.models import StaffUser
    from portal.models.enums import ChargeStatus
    from portal.services.audit import Actor
    from portal.services.payments.collect import record_at_desk
    from portal.services.payments.provider import get_provider
    from tests.noshow.test_payments import _fee_with_card

    charge = _fee_with_card()
    charge_id, status = charge.id, ChargeStatus.SUCCEEDED if desk == "paid" else ChargeStatus.WAIVED
    staff_id = f.staff_user().id
    db.session.commit()
    provider = get_provider()
    real = provider.charge_saved_card

    def charged_while_the_desk_settles(**kwargs):  # type: ignore[no-untyped-def]
        def at_desk() -> None:
            with app.app_context():
                staff = db.session.get(StaffUser, staff_id)
                record_at_desk(charge_id, status, actor=Actor.staff(staff))
                db.session.commit()
                db.session.remove()

        thread = threading.Thread(target=at_desk)
        thread.start()
        thread.join(30)
        return real(**kwargs)

    monkeypatch.setattr(provider, "charge_saved_card", charged_while_the_desk_settles)

    assert collect_charge(charge_id) == "refunding"

    db.session.expire_all()
    assert ledger.status_of(charge_id) == status  # the desk's word stands
    (extra,) = [c for c, _ in ledger.charges_for_patient(charge.patient_id) if c.duplicate_of_id]
    assert refund_charge(extra.id) == "refunded"
    (intent_id,) = stripe.intents
    assert [r["payment_intent"] for r in stripe.refunds] == [intent_id]
    assert collect_charge(charge_id) == "nothing to collect"
    from portal.services.cancellation import fee_charge

    fee = fee_charge(charge.appointment_id)  # the visit's fee, not the payment given back
    assert fee is not None and fee.id == charge_id


def _waived_after_the_first_read(
    app: Flask, monkeypatch: pytest.MonkeyPatch, charge_id: int
) -> Callable[[int], ChargeStatus]:
    """Make the next read of a charge's status (the webhook's: owed) let the desk waive
    the charge and commit before the webhook carries on; return the real reader."""
    staff_id = f.staff_user().id
    db.session.commit()

    def waive() -> None:
        with app.app_context():
            staff = db.session.get(StaffUser, staff_id)
            collect.record_at_desk(charge_id, ChargeStatus.WAIVED, actor=Actor.staff(staff))
            db.session.commit()
            db.session.remove()

    real, main, waived = ledger.status_of, threading.current_thread(), []

    def read_then_the_desk_waives(cid: int) -> ChargeStatus:
        seen = real(cid)
        if threading.current_thread() is main and not waived:
            waived.append(True)
            desk = threading.Thread(target=waive)
            desk.start()
            desk.join(30)
        return seen

    monkeypatch.setattr(ledger, "status_of", read_then_the_desk_waives)
    return real


def test_a_fee_webhook_racing_a_desk_waiver_is_recorded_and_answered_2xx(
    app: Flask, client: FlaskClient, stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``payment_intent.succeeded`` reads the fee as owed; the desk waives it and commits;
    the webhook's ledger step is then refused (waived -> succeeded). It must not answer
    409 and leave Stripe's payment out of the ledger: the payment is a second one."""
    charge = _fee_with_card()
    charge_id = charge.id
    real = _waived_after_the_first_read(app, monkeypatch, charge_id)
    event = stripe.event(
        "payment_intent.succeeded", {"id": "pi_raced", "metadata": {"charge_id": str(charge_id)}}
    )

    answer = _deliver(client, stripe, event)

    monkeypatch.setattr(ledger, "status_of", real)
    db.session.expire_all()
    assert ledger.status_of(charge_id) == ChargeStatus.WAIVED
    assert (answer.status_code, answer.json.get("outcome")) == (200, "refunding"), answer.json
    assert collect.payment_recorded("pi_raced")
    (extra,) = [c for c, _ in ledger.charges_for_patient(charge.patient_id) if c.duplicate_of_id]
    assert refund_charge(extra.id) == "refunded"


def test_a_deposit_checkout_racing_a_desk_waiver_is_recorded_and_answered_2xx(
    app: Flask, client: FlaskClient, stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same in the checkout webhook: it reads the deposit as owed, the desk waives it,
    the booking finds no pending charge and the fall-through ledger step is refused."""
    slot = f.slot()
    offer, outcome = _accept(slot, deposit=True)
    _pay(client, offer)
    charge_id = outcome.charge.id
    completed = stripe.complete(_session_id(stripe))
    intent = completed["data"]["object"]["payment_intent"]
    real = _waived_after_the_first_read(app, monkeypatch, charge_id)

    answer = _deliver(client, stripe, completed)

    monkeypatch.setattr(ledger, "status_of", real)
    db.session.expire_all()
    assert ledger.status_of(charge_id) == ChargeStatus.WAIVED
    assert (answer.status_code, answer.json.get("outcome")) == (200, "refunding"), answer.json
    assert collect.payment_recorded(intent)
