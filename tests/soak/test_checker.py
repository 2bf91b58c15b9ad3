"""The soak's money checks see a second payment kept, and a payment the ledger lacks."""

from __future__ import annotations

from flask.testing import FlaskClient

from jobs.payments import refund_charge
from portal.db import db
from tests.fakes.stripe_server import FakeStripe
from tests.noshow.test_late_payments import paid_at_the_desk_then_online, second_payments
from tests.noshow.test_payments import _deliver, stripe
from tests.soak.checker import Tally, _charges

__all__ = ["stripe"]


def _money(stripe: FakeStripe) -> Tally:
    tally = Tally()
    with db.engine.connect() as conn:
        _charges(conn, tally, stripe)
    return tally


def test_a_second_payment_is_a_violation_until_it_is_given_back(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    offer, _, completed = paid_at_the_desk_then_online(client, stripe)
    intent = completed["data"]["object"]["payment_intent"]
    # Stripe took it, the ledger does not show it yet (the desk's payment hides it by charge)
    assert _money(stripe).counts["payment_unrecorded"] == 1
    assert _deliver(client, stripe, completed).json["outcome"] == "refunding"

    kept = _money(stripe)
    assert kept.counts["payment_unrecorded"] == 0
    assert kept.violations == {"second_payment_kept": 1}

    db.session.expire_all()
    (extra,) = second_payments(offer.patient_id)
    assert refund_charge(extra.id) == "refunded"
    assert _money(stripe).violations == {}
    assert stripe.refunds[-1]["payment_intent"] == intent
