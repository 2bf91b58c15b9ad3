"""Payments racing on real threads: two deliveries of one payment, a second card, the
desk, the lapse of the hold and the refund job. Whatever the order, each payment Stripe
took is recorded as paid exactly once, kept for its booking or refunded once, and no
path deadlocks (``busy_retry``) or fails."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from jobs.payments import refund_charge
from portal.db import db, now_utc
from portal.models import ChargeEntry, Slot, StaffUser
from portal.models.enums import ChargeStatus, SlotStatus
from portal.services import holds, ledger
from portal.services.audit import SYSTEM, Actor
from portal.services.errors import DomainError
from portal.services.payments import collect, webhooks
from tests import factories as f
from tests.fakes.stripe_server import FakeStripe
from tests.noshow.test_late_payments import (
    _accept,
    _reopened_slot,
    _second_payment,
    second_payments,
)
from tests.noshow.test_payments import _fee_with_card, _pay, _session_id, stripe
from tests.races import assert_consistent, race

pytestmark = pytest.mark.usefixtures("app")
__all__ = ["stripe"]


def paid_as(ref: str) -> int:
    """How many times the ledger records provider payment ``ref`` as paid (must be 1)."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(ChargeEntry)
        .where(ChargeEntry.provider_ref == ref, ChargeEntry.status == ChargeStatus.SUCCEEDED)
    )


def _at_desk(offer_id: int) -> str:
    try:
        with db.session.begin_nested():
            holds.complete_hold(offer_id, actor=SYSTEM)
    except DomainError:  # the hold was paid, booked or ended first: the desk took nothing
        return "desk too late"
    return "desk"


def _lapse(slot_id: int, offer_id: int) -> str:
    later = now_utc() + timedelta(seconds=120)
    return "lapsed" if holds.release_hold(slot_id, offer_id, actor=SYSTEM, now=later) else "held"


def _only(outcomes, allowed: set[str]) -> None:  # type: ignore[no-untyped-def]
    assert set(outcomes) <= allowed, outcomes  # nothing failed, refused or deadlocked


def _held_and_paid(client: FlaskClient, stripe: FakeStripe, slot: Slot):  # type: ignore[no-untyped-def]
    offer, outcome = _accept(slot, deposit=True)
    _pay(client, offer)
    event = stripe.complete(_session_id(stripe))
    stripe.sessions.clear()
    return offer, outcome.charge, event


def test_a_payment_racing_its_duplicate_and_the_lapse_is_kept_or_refunded_once(
    app: Flask, client: FlaskClient, stripe: FakeStripe
) -> None:
    for _ in range(6):
        slot = _reopened_slot()
        offer, charge, event = _held_and_paid(client, stripe, slot)
        pay = partial(webhooks.handle_event, event)

        outcomes = race(app, [pay, pay, partial(_lapse, slot.id, offer.id)], jitter=0.02)

        _only(outcomes, {"booked", "refunding", "duplicate", "lapsed", "held"})
        db.session.expire_all()
        assert outcomes["booked"] + outcomes["refunding"] == 1, outcomes
        assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED
        if outcomes["booked"]:
            assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED
            assert refund_charge(charge.id) == "kept for its booking"
        else:
            assert refund_charge(charge.id) == "refunded"
        assert_consistent()


def test_the_desk_and_an_online_payment_racing_book_once_and_keep_one_payment(
    app: Flask, client: FlaskClient, stripe: FakeStripe
) -> None:
    """Found writing this test: the webhook saved the card (patient row) before booking
    (slot row), the desk's booking takes them the other way round: a deadlock."""
    for _ in range(6):
        offer, charge, event = _held_and_paid(client, stripe, f.slot())
        pay = partial(webhooks.handle_event, event)

        outcomes = race(app, [pay, pay, partial(_at_desk, offer.id)], jitter=0.02)

        _only(outcomes, {"booked", "desk", "desk too late", "refunding", "duplicate"})
        db.session.expire_all()
        assert outcomes["booked"] + outcomes["desk"] == 1, outcomes  # one booking
        assert db.session.get(Slot, offer.slot_id).status == SlotStatus.BOOKED
        assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED
        extra = second_payments(offer.patient_id)
        if outcomes["desk"]:  # the online payment came second: it goes back, once
            assert outcomes["refunding"] == 1 and len(extra) == 1, outcomes
            assert refund_charge(extra[0].id) == "refunded"
        else:  # the desk came second: it took nothing
            assert outcomes["refunding"] == 0 and extra == [], outcomes
            assert refund_charge(charge.id) == "kept for its booking"
        assert_consistent()


def test_two_cards_the_desk_and_the_lapse_racing_record_each_payment_once(
    app: Flask, client: FlaskClient, stripe: FakeStripe
) -> None:
    for _ in range(15):
        slot = f.slot()
        offer, _, event = _held_and_paid(client, stripe, slot)
        first = event["data"]["object"]["payment_intent"]
        second = f"pi_b_{offer.id}"
        pay = partial(webhooks.handle_event, event)
        pay_again = partial(webhooks.handle_event, _second_payment(event, second))

        outcomes = race(
            app,
            [
                pay,
                pay,
                pay_again,
                pay_again,
                partial(_at_desk, offer.id),
                partial(_lapse, slot.id, offer.id),
            ],
            jitter=0.03,
        )

        _only(
            outcomes,
            {"booked", "desk", "desk too late", "refunding", "duplicate", "lapsed", "held"},
        )
        db.session.expire_all()
        assert (paid_as(first), paid_as(second)) == (1, 1), outcomes


@pytest.mark.parametrize("desk", [ChargeStatus.SUCCEEDED, ChargeStatus.WAIVED])
def test_two_fee_payments_and_the_desk_racing_record_each_payment_once(
    app: Flask, stripe: FakeStripe, desk: ChargeStatus
) -> None:
    staff_id = f.staff_user().id
    db.session.commit()
    for _ in range(10):
        charge_id = _fee_with_card().id
        refs = (f"pi_a_{charge_id}", f"pi_b_{charge_id}")
        a, b = (
            partial(
                webhooks.handle_event,
                stripe.event(
                    "payment_intent.succeeded",
                    {"id": ref, "metadata": {"charge_id": str(charge_id)}},
                ),
            )
            for ref in refs
        )

        def at_desk(charge_id: int = charge_id) -> str:
            staff = db.session.get(StaffUser, staff_id)
            try:
                collect.record_at_desk(charge_id, desk, actor=Actor.staff(staff))
            except ledger.ChargeStepRefused:  # a payment settled it first
                return "desk too late"
            return "desk"

        outcomes = race(app, [a, a, b, at_desk], jitter=0.03)

        _only(outcomes, {"succeeded", "refunding", "duplicate", "desk", "desk too late"})
        db.session.expire_all()
        assert [paid_as(ref) for ref in refs] == [1, 1], outcomes


def test_the_refund_jobs_and_a_second_card_racing_refund_each_payment_once(
    app: Flask, client: FlaskClient, stripe: FakeStripe
) -> None:
    for _ in range(10):
        slot = f.slot()
        offer, charge, event = _held_and_paid(client, stripe, slot)
        _lapse(slot.id, offer.id)
        db.session.commit()
        assert webhooks.handle_event(event) == "refunding"
        db.session.commit()
        second = f"pi_b_{offer.id}"
        pay_again = partial(webhooks.handle_event, _second_payment(event, second))
        refund = partial(refund_charge, charge.id)

        outcomes = race(
            app,
            [refund, refund, pay_again, pay_again, partial(webhooks.handle_event, event)],
            jitter=0.03,
        )

        _only(outcomes, {"refunded", "nothing to refund", "refunding", "duplicate"})
        db.session.expire_all()
        assert paid_as(second) == 1
        (extra,) = second_payments(offer.patient_id)
        assert refund_charge(extra.id) == "refunded"
        assert ledger.status_of(charge.id) == ChargeStatus.REFUNDED
    refunded = [r["payment_intent"] for r in stripe.refunds]
    assert len(refunded) == len(set(refunded)) == 20, refunded
