"""The soak's money checks see a second payment kept, and a payment the ledger lacks."""

from __future__ import annotations

from flask.testing import FlaskClient

from portal.db import db
from portal.services import holds
from portal.services.audit import SYSTEM
from tests import factories as f
from tests.fakes.stripe_server import FakeStripe
from tests.noshow.test_late_payments import _accept
from tests.noshow.test_payments import _deliver, _pay, _session_id, stripe
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
    from jobs.payments import refund_charge
    from portal.services import ledger

    slot = f.slot()
    offer, _ = _accept(slot, deposit=True)
    _pay(client, offer)
    holds.complete_hold(offer.id, actor=SYSTEM)  # the desk takes the deposit
    db.session.commit()
    completed = stripe.complete(_session_id(stripe))
    intent = completed["data"]["object"]["payment_intent"]
    assert _money(stripe).counts["payment_unrecorded"] == 1  # Stripe took it; no record yet
    assert _deliver(client, stripe, completed).json["outcome"] == "refunding"

    kept = _money(stripe)
    assert kept.counts["payment_unrecorded"] == 0
    assert kept.violations == {"second_payment_kept": 1}

    db.session.expire_all()
    (extra,) = [c for c, _ in ledger.charges_for_patient(offer.patient_id) if c.duplicate_of_id]
    assert refund_charge(extra.id) == "refunded"
    assert _money(stripe).violations == {}
    assert stripe.refunds[-1]["payment_intent"] == intent
