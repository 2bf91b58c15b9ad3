"""Payments racing: the desk, two deliveries of one payment, a second card, the lapse, the refund job (real threads)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from jobs.payments import refund_charge
from portal.db import db, now_utc
from portal.models import ChargeEntry, StaffUser
from portal.models.enums import ChargeStatus
from portal.services import holds, ledger
from portal.services.audit import SYSTEM, Actor
from portal.services.payments import collect, webhooks
from tests import factories as f
from tests.fakes.stripe_server import FakeStripe
from tests.noshow.test_late_payments import _accept, _second_payment
from tests.noshow.test_payments import _fee_with_card, _pay, _session_id, stripe
from tests.races import race

pytestmark = pytest.mark.usefixtures("app")
__all__ = ["stripe"]


def _succeeded(ref: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(ChargeEntry)
        .where(ChargeEntry.provider_ref == ref, ChargeEntry.status == ChargeStatus.SUCCEEDED)
    )


def _at_desk(offer_id: int) -> str:
    holds.complete_hold(offer_id, actor=SYSTEM)
    return "desk"


def _lapse(slot_id: int, offer_id: int, at) -> str:
    return "lapse:" + str(holds.release_hold(slot_id, offer_id, actor=SYSTEM, now=at))


def test_deposit_storm(app: Flask, client: FlaskClient, stripe: FakeStripe) -> None:
    for _ in range(15):
        slot = f.slot()
        offer, _ = _accept(slot, deposit=True)
        _pay(client, offer)
        event = stripe.complete(_session_id(stripe))
        stripe.sessions.clear()
        a = event["data"]["object"]["payment_intent"]
        b_event = _second_payment(event, f"pi_b_{offer.id}")
        pay_a = partial(webhooks.handle_event, event)
        pay_b = partial(webhooks.handle_event, b_event)
        lapse = partial(_lapse, slot.id, offer.id, now_utc() + timedelta(seconds=120))
        outcomes = race(
            app, [pay_a, pay_a, pay_b, pay_b, partial(_at_desk, offer.id), lapse], jitter=0.03
        )
        assert not [o for o in outcomes if o.startswith("error") or o == "busy_retry"], outcomes
        db.session.expire_all()
        for ref in (a, f"pi_b_{offer.id}"):
            assert _succeeded(ref) == 1, (ref, outcomes)


@pytest.mark.parametrize("desk", ["paid", "waived"])
def test_fee_storm(app: Flask, client: FlaskClient, stripe: FakeStripe, desk: str) -> None:
    staff_id = f.staff_user().id
    db.session.commit()

    def event(ref: str, charge_id: int) -> dict:
        return stripe.event(
            "payment_intent.succeeded", {"id": ref, "metadata": {"charge_id": str(charge_id)}}
        )

    for _ in range(10):
        charge = _fee_with_card()
        cid = charge.id
        a, b = event(f"pi_a_{cid}", cid), event(f"pi_b_{cid}", cid)
        status = ChargeStatus.SUCCEEDED if desk == "paid" else ChargeStatus.WAIVED

        def at_desk(cid=cid, status=status) -> str:
            collect.record_at_desk(
                cid, status, actor=Actor.staff(db.session.get(StaffUser, staff_id))
            )
            return "desk"

        def hook(e) -> str:
            try:
                return "hook:" + webhooks.handle_event(e)
            except Exception as exc:
                return f"hook-raised:{type(exc).__name__}:{getattr(exc, 'code', '')}"

        outcomes = race(
            app, [partial(hook, a), partial(hook, a), partial(hook, b), at_desk], jitter=0.03
        )
        assert not [o for o in outcomes if o.startswith("error") or o == "busy_retry"], outcomes
        assert not [o for o in outcomes if o.startswith("hook-raised")], outcomes
        db.session.expire_all()
        for ref in (f"pi_a_{cid}", f"pi_b_{cid}"):
            assert _succeeded(ref) == 1, (ref, outcomes)


def test_lapsed_payment_refunds_and_second_card_storm(
    app: Flask, client: FlaskClient, stripe: FakeStripe
) -> None:
    from jobs.payments import settle_payments  # noqa: F401

    for _ in range(10):
        slot = f.slot()
        offer, outcome = _accept(slot, deposit=True)
        _pay(client, offer)
        event = stripe.complete(_session_id(stripe))
        stripe.sessions.clear()
        cid = outcome.charge.id
        holds.release_hold(slot.id, offer.id, actor=SYSTEM, now=now_utc() + timedelta(seconds=120))
        db.session.commit()
        assert webhooks.handle_event(event) == "refunding"
        db.session.commit()
        b = _second_payment(event, f"pi_b_{offer.id}")
        outcomes = race(
            app,
            [
                partial(refund_charge, cid),
                partial(refund_charge, cid),
                partial(webhooks.handle_event, b),
                partial(webhooks.handle_event, b),
                partial(webhooks.handle_event, event),
            ],
            jitter=0.03,
        )
        assert not [o for o in outcomes if o.startswith("error") or o == "busy_retry"], outcomes
        db.session.expire_all()
        assert _succeeded(f"pi_b_{offer.id}") == 1
        extra = [c for c, _ in ledger.charges_for_patient(offer.patient_id) if c.duplicate_of_id]
        assert len(extra) == 1, outcomes
        assert refund_charge(extra[0].id) == "refunded"
        assert ledger.status_of(cid) == ChargeStatus.REFUNDED
    refs = [r["payment_intent"] for r in stripe.refunds]
    assert len(refs) == len(set(refs)) == 20, refs
