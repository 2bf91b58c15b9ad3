"""Second payments for a settled charge: recorded, refunded once, never counted as charged.

Several tests let another request commit at a chosen moment of this one (a desk member
waiving a fee, the first delivery of the same event) to pin down one interleaving;
``tests/noshow/test_payment_races.py`` runs them all at once on real threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from jobs.payments import RetryLater, collect_charge, refund_charge
from portal.db import db, now_utc
from portal.models import StaffUser
from portal.models.enums import ChargeStatus
from portal.services import analytics, ledger
from portal.services.audit import Actor
from portal.services.cancellation import fee_charge
from portal.services.payments import collect, webhooks
from portal.services.payments.provider import get_provider
from tests import factories as f
from tests.fakes.stripe_server import FakeStripe
from tests.noshow.test_late_payments import (
    _accept,
    paid_at_the_desk_then_online,
    second_payments,
)
from tests.noshow.test_payment_races import paid_as
from tests.noshow.test_payments import _deliver, _fee_with_card, _pay, _session_id, stripe

pytestmark = pytest.mark.usefixtures("app")
__all__ = ["stripe"]


def _meanwhile(app: Flask, action: Callable[[], Any]) -> None:
    """``action`` runs and commits in its own thread and session, as another request."""

    def run() -> None:
        with app.app_context():
            try:
                action()
                db.session.commit()
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)


def _when_first_called(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    target: tuple[Any, str],
    action: Callable[[], Any],
    *,
    after: bool,
) -> None:
    """The first time this thread calls ``target`` (module, name), ``action`` commits in
    another request, ``after`` the call or before it."""
    module, name = target
    real, here, done = getattr(module, name), threading.current_thread(), []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        first = threading.current_thread() is here and not done
        done.append(True)
        if first and not after:
            _meanwhile(app, action)
        result = real(*args, **kwargs)
        if first and after:
            _meanwhile(app, action)
        return result

    monkeypatch.setattr(module, name, wrapped)


def _at_desk(charge_id: int, status: ChargeStatus) -> Callable[[], Any]:
    staff_id = f.staff_user().id
    db.session.commit()
    return lambda: collect.record_at_desk(
        charge_id, status, actor=Actor.staff(db.session.get(StaffUser, staff_id))
    )


def _deposits() -> dict[str, int]:
    today = now_utc().date()
    fees = analytics.figures(today - timedelta(days=2), today + timedelta(days=2)).fees
    rows = [r for r in fees["by_kind"] if r["kind"] == "deposit"]
    row = rows[0] if rows else {"charges": 0, "charged": 0, "collected": 0}
    return {k: int(row[k]) for k in ("charges", "charged", "collected")}


def test_a_refunded_second_payment_is_not_counted_as_another_deposit_charged(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    """The dashboard's fees table: one deposit was asked for and kept. The second payment,
    given back, is not a second deposit charged (nor does it halve the collection rate)."""
    before = _deposits()
    offer, _, completed = paid_at_the_desk_then_online(client, stripe)
    assert _deliver(client, stripe, completed).json["outcome"] == "refunding"
    db.session.expire_all()
    (extra,) = second_payments(offer.patient_id)
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
    """Two deliveries of one event. The second reads the charge (owed), then the first
    books and commits: the second must not take its own payment for a second one."""
    offer, _ = _accept(f.slot(), deposit=True)
    _pay(client, offer)
    event = stripe.complete(_session_id(stripe))
    first: list[str] = []
    _when_first_called(
        app,
        monkeypatch,
        (ledger, "status_of"),
        lambda: first.append(webhooks.handle_event(event)),
        after=True,
    )

    second = webhooks.handle_event(event)

    assert (first, second) == (["booked"], "duplicate")
    assert second_payments(offer.patient_id) == []


def test_an_off_session_fee_the_desk_also_took_is_not_kept_unrecorded(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    """The off-session charge of a fee times out; the desk takes the fee meanwhile;
    Stripe's charge went through after all. Its event is a second payment: recorded and
    refunded."""
    charge = _fee_with_card()
    stripe.hang("/v1/payment_intents", 2.5)
    with pytest.raises(RetryLater):
        collect_charge(charge.id)
    _at_desk(charge.id, ChargeStatus.SUCCEEDED)()
    db.session.commit()
    time.sleep(2)  # the hung request completes: Stripe took the fee from the card
    (intent_id,) = stripe.intents
    assert collect_charge(charge.id) == "nothing to collect"  # RQ's retry
    event = stripe.event(
        "payment_intent.succeeded", {"id": intent_id, "metadata": {"charge_id": str(charge.id)}}
    )

    answer = _deliver(client, stripe, event).json["outcome"]

    db.session.expire_all()
    assert (answer, paid_as(intent_id)) == ("refunding", 1)
    (extra,) = second_payments(charge.patient_id)
    assert refund_charge(extra.id) == "refunded"
    assert [r["payment_intent"] for r in stripe.refunds] == [intent_id]
    assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED  # the desk's payment stands


@pytest.mark.parametrize("desk", [ChargeStatus.SUCCEEDED, ChargeStatus.WAIVED])
def test_a_card_charged_while_the_desk_settled_the_fee_is_given_back(
    app: Flask, stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch, desk: ChargeStatus
) -> None:
    """The fee job charges the saved card; meanwhile the desk takes the fee (or waives
    it). The job finds the charge settled when it records: the card's payment is a
    second payment, recorded on its own and refunded — not folded into the desk's."""
    charge = _fee_with_card()
    charge_id, settle = charge.id, _at_desk(charge.id, desk)
    provider = get_provider()
    real = provider.charge_saved_card

    def charged_while_the_desk_settles(**kwargs: Any) -> Any:
        _meanwhile(app, settle)
        return real(**kwargs)

    monkeypatch.setattr(provider, "charge_saved_card", charged_while_the_desk_settles)

    assert collect_charge(charge_id) == "refunding"

    db.session.expire_all()
    assert ledger.status_of(charge_id) == desk  # the desk's word stands
    (extra,) = second_payments(charge.patient_id)
    assert refund_charge(extra.id) == "refunded"
    (intent_id,) = stripe.intents
    assert [r["payment_intent"] for r in stripe.refunds] == [intent_id]
    assert collect_charge(charge_id) == "nothing to collect"
    fee = fee_charge(charge.appointment_id)  # the visit's fee, not the payment given back
    assert fee is not None and fee.id == charge_id


def test_a_fee_webhook_racing_a_desk_waiver_is_recorded_and_answered_2xx(
    app: Flask, client: FlaskClient, stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``payment_intent.succeeded`` arrives; the desk waives the fee and commits just before
    the webhook's ledger step, which is then refused (waived -> succeeded). It must not
    answer 409 and leave Stripe's payment out of the ledger: the payment is a second one."""
    charge = _fee_with_card()
    waive = _at_desk(charge.id, ChargeStatus.WAIVED)
    _when_first_called(app, monkeypatch, (ledger, "append"), waive, after=False)
    event = stripe.event(
        "payment_intent.succeeded", {"id": "pi_raced", "metadata": {"charge_id": str(charge.id)}}
    )

    answer = _deliver(client, stripe, event)

    db.session.expire_all()
    assert ledger.status_of(charge.id) == ChargeStatus.WAIVED
    assert (answer.status_code, answer.json.get("outcome")) == (200, "refunding"), answer.json
    assert paid_as("pi_raced") == 1
    (extra,) = second_payments(charge.patient_id)
    assert refund_charge(extra.id) == "refunded"


def test_a_deposit_checkout_racing_a_desk_waiver_is_recorded_and_answered_2xx(
    app: Flask, client: FlaskClient, stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same in the checkout webhook: it reads the deposit as owed, the desk waives it,
    the booking finds no pending charge and the fall-through ledger step is refused."""
    offer, outcome = _accept(f.slot(), deposit=True)
    _pay(client, offer)
    completed = stripe.complete(_session_id(stripe))
    waive = _at_desk(outcome.charge.id, ChargeStatus.WAIVED)
    _when_first_called(app, monkeypatch, (ledger, "status_of"), waive, after=True)

    answer = _deliver(client, stripe, completed)

    db.session.expire_all()
    assert ledger.status_of(outcome.charge.id) == ChargeStatus.WAIVED
    assert (answer.status_code, answer.json.get("outcome")) == (200, "refunding"), answer.json
    assert paid_as(completed["data"]["object"]["payment_intent"]) == 1
