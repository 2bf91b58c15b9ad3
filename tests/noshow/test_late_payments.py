"""Late, repeated and reordered Stripe webhooks for deposits: every payment Stripe took
ends in the ledger, kept for a booking or refunded exactly once, and the webhook answers
2xx once it has done that (any other answer only makes Stripe send the event again)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from flask import Flask
from flask.testing import FlaskClient

from jobs.payments import refund_charge, settle_payments
from portal.db import db, now_utc
from portal.models import Slot
from portal.models.enums import ChargeStatus, SlotStatus
from portal.services import holds, ledger, release, responses
from portal.services.audit import SYSTEM, Actor
from portal.services.payments import webhooks
from portal.services.payments.settle import refunds_due
from tests import factories as f
from tests.fakes.stripe_server import FakeStripe
from tests.noshow.test_payments import _deliver, _pay, _session_id, stripe
from tests.races import assert_consistent, race

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


def _lapse(slot_id: int, offer_id: int, at) -> str:
    return str(holds.release_hold(slot_id, offer_id, actor=SYSTEM, now=at))


def test_a_payment_racing_its_duplicate_and_the_lapse_is_kept_or_refunded_once(
    app: Flask, client: FlaskClient, stripe: FakeStripe
) -> None:
    for _ in range(6):
        slot = _reopened_slot()
        offer, outcome = _accept(slot, deposit=True)
        _pay(client, offer)
        event = stripe.complete(_session_id(stripe))
        stripe.sessions.clear()
        charge_id = outcome.charge.id

        pay = partial(webhooks.handle_event, event)
        lapse = partial(_lapse, slot.id, offer.id, now_utc() + timedelta(seconds=120))
        outcomes = race(app, [pay, pay, lapse], jitter=0.02)
        assert not [o for o in outcomes if o.startswith("error")], outcomes
        db.session.expire_all()
        booked = outcomes["booked"] == 1
        assert outcomes["booked"] + outcomes["refunding"] == 1, outcomes
        status = ledger.status_of(charge_id)
        if booked:
            assert status == ChargeStatus.SUCCEEDED
            assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED
            assert refund_charge(charge_id) == "kept for its booking"
        else:
            assert status == ChargeStatus.SUCCEEDED
            assert refund_charge(charge_id) == "refunded"
        assert_consistent()


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


def test_a_deposit_paid_online_after_the_desk_took_it_is_refunded_once(
    client: FlaskClient, stripe: FakeStripe
) -> None:
    """Staff took the deposit at the desk (booked); the patient had paid online as well.
    The online payment is recorded as a second payment and given back, once."""
    slot = f.slot()
    offer, outcome = _accept(slot, deposit=True)
    _pay(client, offer)
    holds.complete_hold(offer.id, actor=SYSTEM)  # the desk records the deposit
    db.session.commit()
    completed = stripe.complete(_session_id(stripe))

    answers = [_deliver(client, stripe, completed) for _ in range(2)]

    assert [r.status_code for r in answers] == [200, 200]
    assert [r.json["outcome"] for r in answers] == ["refunding", "duplicate"]
    db.session.expire_all()
    assert ledger.status_of(outcome.charge.id) == ChargeStatus.SUCCEEDED  # the desk's stands
    (extra,) = [
        c for c, _ in ledger.charges_for_patient(offer.patient_id) if c.id != outcome.charge.id
    ]
    assert extra.duplicate_of_id == outcome.charge.id and extra.amount_cents == 5000
    assert refunds_due(now_utc() + timedelta(minutes=5)) == [extra.id]  # if the job is lost
    assert refund_charge(extra.id) == "refunded"
    assert refund_charge(extra.id) == "nothing to refund"
    assert [r["amount"] for r in stripe.refunds] == [5000]
    assert ledger.status_of(extra.id) == ChargeStatus.REFUNDED
    assert refunds_due(now_utc() + timedelta(minutes=5)) == []
    assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED  # the booking stands
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
    (extra,) = [
        c for c, _ in ledger.charges_for_patient(offer.patient_id) if c.id != outcome.charge.id
    ]
    assert refund_charge(extra.id) == "refunded"
    assert stripe.refunds[-1]["payment_intent"] == "pi_second_card"
    assert len(stripe.refunds) == (1 if first == "booked" else 2)
    assert _deliver(client, stripe, completed).json["outcome"] == "duplicate"
    assert_consistent()


def _at_desk(offer_id: int) -> str:
    holds.complete_hold(offer_id, actor=SYSTEM)
    return "desk"


def test_the_desk_and_an_online_payment_racing_book_once_and_keep_one_payment(
    app: Flask, client: FlaskClient, stripe: FakeStripe
) -> None:
    for _ in range(6):
        slot = f.slot()
        offer, outcome = _accept(slot, deposit=True)
        _pay(client, offer)
        event = stripe.complete(_session_id(stripe))
        stripe.sessions.clear()
        pay = partial(webhooks.handle_event, event)

        outcomes = race(app, [pay, pay, partial(_at_desk, offer.id)], jitter=0.02)

        # No deadlock to rerun (the endpoint would): the card is saved after the booking.
        assert "busy_retry" not in outcomes, outcomes

        assert not [o for o in outcomes if o.startswith("error")], outcomes
        db.session.expire_all()
        assert outcomes["booked"] + outcomes["desk"] == 1, outcomes  # one booking
        assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED
        assert ledger.status_of(outcome.charge.id) == ChargeStatus.SUCCEEDED
        extra = [c for c, _ in ledger.charges_for_patient(offer.patient_id) if c.duplicate_of_id]
        if outcomes["desk"]:  # the online payment came second: it goes back, once
            assert outcomes["refunding"] == 1 and len(extra) == 1, outcomes
            assert refund_charge(extra[0].id) == "refunded"
        else:  # the desk came second: it took nothing
            assert outcomes["refunding"] == 0 and extra == [], outcomes
            assert refund_charge(outcome.charge.id) == "kept for its booking"
        assert_consistent()
