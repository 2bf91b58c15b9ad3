"""Late, repeated and reordered Stripe webhooks for deposits: every payment Stripe took
ends in the ledger, kept for a booking or refunded exactly once, and the webhook answers
2xx once it has done that (any other answer only makes Stripe send the event again)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from jobs.payments import refund_charge, settle_payments
from portal.db import db, now_utc
from portal.models import Slot
from portal.models.enums import ChargeStatus, SlotStatus
from portal.services import holds, ledger, release, responses
from portal.services.audit import SYSTEM, Actor
from portal.services.payments.settle import refunds_due
from tests import factories as f
from tests.fakes.stripe_server import FakeStripe
from tests.noshow.test_payments import _deliver, _pay, _session_id, stripe
from tests.races import assert_consistent

pytestmark = pytest.mark.usefixtures("app")
__all__ = ["stripe"]


def _accept(slot: Slot, *, deposit: bool):
    patient = f.patient(deposit_required=deposit)
    offer = f.offer(slot=slot, entry=f.waitlist_entry(patient=patient, slot=slot))
    outcome = responses.accept_offer(offer.id, actor=Actor.patient(patient.id))
    db.session.commit()
    return offer, outcome


def _reopened_slot() -> Slot:
    """A slot booked through an accepted offer, then released: open again."""
    slot = f.slot()
    _, first = _accept(slot, deposit=False)
    assert first.appointment is not None
    release.release_slot(slot.id, SYSTEM, reason="test")
    db.session.commit()
    return slot


def test_a_released_slot_is_booked_again_through_a_new_offer() -> None:
    slot = _reopened_slot()
    _, outcome = _accept(slot, deposit=False)
    assert outcome.appointment is not None
    db.session.expire_all()
    assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED
    assert_consistent()


def test_a_deposit_paid_for_a_released_slots_new_hold_books(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    slot = _reopened_slot()
    offer, outcome = _accept(slot, deposit=True)
    assert outcome.held
    _pay(client, offer)

    response = _deliver(client, stripe, stripe.complete(_session_id(stripe)))

    assert response.status_code == 200, response.json
    assert response.json["outcome"] == "booked"
    db.session.expire_all()
    assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED
    assert ledger.status_of(outcome.charge.id) == ChargeStatus.SUCCEEDED
    assert_consistent()


@pytest.mark.parametrize("how", ["lapsed", "released"])
def test_a_late_payment_twice_after_the_hold_ended_is_recorded_and_refunded_once(
    client: FlaskClient, stripe: FakeStripe, how: str
) -> None:
    slot = _reopened_slot()
    offer, outcome = _accept(slot, deposit=True)
    _pay(client, offer)
    if how == "lapsed":
        later = now_utc() + timedelta(seconds=120)
        assert holds.release_hold(slot.id, offer.id, actor=SYSTEM, now=later)
    else:
        release.release_slot(slot.id, SYSTEM, reason="test")
    _accept(slot, deposit=False)  # someone else books it meanwhile
    completed = stripe.complete(_session_id(stripe))

    answers = [_deliver(client, stripe, completed) for _ in range(2)]

    assert [r.status_code for r in answers] == [200, 200]
    assert [r.json["outcome"] for r in answers] == ["refunding", "duplicate"]
    assert refund_charge(outcome.charge.id) == "refunded"
    assert refund_charge(outcome.charge.id) == "nothing to refund"
    assert [r["amount"] for r in stripe.refunds] == [5000]
    assert ledger.status_of(outcome.charge.id) == ChargeStatus.REFUNDED
    assert_consistent()


def test_a_payment_that_booked_is_never_refunded(client: FlaskClient, stripe: FakeStripe) -> None:
    slot = f.slot()
    offer, outcome = _accept(slot, deposit=True)
    _pay(client, offer)
    assert _deliver(client, stripe, stripe.complete(_session_id(stripe))).json["outcome"] == (
        "booked"
    )
    assert refund_charge(outcome.charge.id) == "kept for its booking"
    assert refunds_due(now_utc() + timedelta(hours=1)) == []
    assert settle_payments(now_utc() + timedelta(hours=1)) == {"refunds": 0, "collections": 0}
    assert stripe.refunds == []


def test_a_refund_lost_with_redis_is_redone_within_a_minute(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    """Found by the soak: a refund job lost with Redis waited two minutes for the sweep."""
    slot = f.slot()
    offer, outcome = _accept(slot, deposit=True)
    _pay(client, offer)
    holds.release_hold(slot.id, offer.id, actor=SYSTEM, now=now_utc() + timedelta(seconds=120))
    db.session.commit()
    assert _deliver(client, stripe, stripe.complete(_session_id(stripe))).json["outcome"] == (
        "refunding"
    )  # ... and Redis loses the refund job before a worker takes it
    paid_at = now_utc()
    assert refunds_due(paid_at) == []  # the job enqueued at commit gets its chance first
    assert refunds_due(paid_at + timedelta(seconds=35)) == [outcome.charge.id]


def _second_payment(event: dict, intent: str) -> dict:
    """The same checkout's event for another payment (a second session, another card)."""
    obj = {**event["data"]["object"], "payment_intent": intent}
    return {**event, "id": f"{event['id']}_again", "data": {"object": obj}}


def paid_at_the_desk_then_online(client: FlaskClient, stripe: FakeStripe):  # type: ignore[no-untyped-def]
    """A held deposit the desk took (the slot is booked), paid online as well: (the
    offer, its charge, Stripe's ``checkout.session.completed`` event, not yet delivered)."""
    offer, outcome = _accept(f.slot(), deposit=True)
    _pay(client, offer)
    holds.complete_hold(offer.id, actor=SYSTEM)  # the desk records the deposit
    db.session.commit()
    return offer, outcome.charge, stripe.complete(_session_id(stripe))


def second_payments(patient_id: int) -> list:  # type: ignore[type-arg]
    """The charges recording the patient's second payments."""
    return [c for c, _ in ledger.charges_for_patient(patient_id) if c.duplicate_of_id]


def test_a_deposit_paid_online_after_the_desk_took_it_is_refunded_once(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    """Staff took the deposit at the desk (booked); the patient had paid online as well.
    The online payment is recorded as a second payment and given back, once."""
    offer, charge, completed = paid_at_the_desk_then_online(client, stripe)

    answers = [_deliver(client, stripe, completed) for _ in range(2)]

    assert [r.status_code for r in answers] == [200, 200]
    assert [r.json["outcome"] for r in answers] == ["refunding", "duplicate"]
    db.session.expire_all()
    assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED  # the desk's stands
    (extra,) = second_payments(offer.patient_id)
    assert extra.duplicate_of_id == charge.id and extra.amount_cents == 5000
    assert refunds_due(now_utc() + timedelta(minutes=5)) == [extra.id]  # if the job is lost
    assert refund_charge(extra.id) == "refunded"
    assert refund_charge(extra.id) == "nothing to refund"
    assert [r["amount"] for r in stripe.refunds] == [5000]
    assert ledger.status_of(extra.id) == ChargeStatus.REFUNDED
    assert refunds_due(now_utc() + timedelta(minutes=5)) == []
    assert db.session.get(Slot, offer.slot_id).status == SlotStatus.BOOKED  # the booking stands
    assert_consistent()


@pytest.mark.parametrize("first", ["booked", "refunded"])
def test_a_second_online_payment_for_one_hold_is_refunded(
    client: FlaskClient, stripe: FakeStripe, first: str
) -> None:
    slot = f.slot()
    offer, outcome = _accept(slot, deposit=True)
    _pay(client, offer)
    if first == "refunded":  # the hold lapsed: the first payment was recorded and refunded
        holds.release_hold(slot.id, offer.id, actor=SYSTEM, now=now_utc() + timedelta(seconds=120))
        db.session.commit()
    completed = stripe.complete(_session_id(stripe))
    assert _deliver(client, stripe, completed).json["outcome"] == (
        "booked" if first == "booked" else "refunding"
    )
    if first == "refunded":
        assert refund_charge(outcome.charge.id) == "refunded"

    again = _deliver(client, stripe, _second_payment(completed, "pi_second_card"))

    assert again.status_code == 200 and again.json["outcome"] == "refunding"
    db.session.expire_all()
    (extra,) = second_payments(offer.patient_id)
    assert refund_charge(extra.id) == "refunded"
    assert stripe.refunds[-1]["payment_intent"] == "pi_second_card"
    assert len(stripe.refunds) == (1 if first == "booked" else 2)
    assert _deliver(client, stripe, completed).json["outcome"] == "duplicate"
    assert_consistent()
