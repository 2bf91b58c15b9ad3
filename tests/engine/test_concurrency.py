"""First accept wins, on real PostgreSQL, with real threads (SPEC §3.4)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.db import db, now_utc
from portal.models import Appointment, Notification, Offer, Patient, Slot
from portal.models.enums import (
    INACTIVE_APPOINTMENT_STATUSES,
    AppointmentSource,
    OfferStatus,
    Purpose,
)
from portal.services import booking, responses
from portal.services.alternatives import find_alternatives
from portal.services.audit import SYSTEM, Actor
from portal.services.filling import advance
from portal.services.release import release_slot
from tests import factories as f
from tests.races import race

ROUNDS = 3
THREADS = 50


def _broadcast_slot(n: int) -> tuple[int, list[int]]:
    """A slot offered to ``n`` patients at once, plus two open alternatives."""
    scene = f.broadcast_scene(n)
    return scene.slot.id, [o.id for o in scene.offers]


def _active_appointments(slot_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Appointment)
        .where(
            Appointment.slot_id == slot_id,
            Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
        )
    )


def _assert_one_winner(slot_id: int, offer_ids: list[int]) -> None:
    db.session.expire_all()
    assert _active_appointments(slot_id) == 1
    statuses = Counter(db.session.scalars(sa.select(Offer.status).where(Offer.id.in_(offer_ids))))
    assert statuses[OfferStatus.ACCEPTED] <= 1
    assert statuses[OfferStatus.PENDING] == 0


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_fifty_threads_accepting_fifty_offers_book_exactly_once(app: Flask, round_no: int) -> None:
    slot_id, offer_ids = _broadcast_slot(THREADS)
    assert len(offer_ids) == THREADS

    def accept(offer_id: int) -> Callable[[], str]:
        return lambda: (responses.accept_offer(offer_id, actor=SYSTEM), "won")[1]

    results = race(app, [accept(o) for o in offer_ids])
    assert results["won"] == 1, results
    assert set(results) <= {"won", "slot_filled", "offer_withdrawn"}
    _assert_one_winner(slot_id, offer_ids)
    accepted = db.session.scalar(
        sa.select(Offer).where(Offer.slot_id == slot_id, Offer.status == OfferStatus.ACCEPTED)
    )
    # Every loser was told, and each has alternatives to book.
    told = set(
        db.session.scalars(
            sa.select(Notification.offer_id).where(Notification.purpose == Purpose.SLOT_FILLED)
        )
    )
    assert told == set(offer_ids) - {accepted.id}
    original = db.session.get(Slot, slot_id)
    loser = db.session.get(Offer, next(iter(told)))
    assert len(find_alternatives(loser.patient, original)) == 2


def test_accept_racing_staff_booking_and_release(app: Flask) -> None:
    slot_id, offer_ids = _broadcast_slot(20)
    staff_patient_ids = [f.patient().id for _ in range(5)]
    db.session.commit()

    def accept(offer_id: int) -> Callable[[], str]:
        return lambda: (responses.accept_offer(offer_id, actor=SYSTEM), "won")[1]

    def staff_book(patient_id: int) -> Callable[[], str]:
        def call() -> str:
            patient = db.session.get(Patient, patient_id)
            booking.book_slot(slot_id, patient, source=AppointmentSource.STAFF, actor=SYSTEM)
            return "won"

        return call

    def wave_expiry() -> str:
        advance(slot_id, now=now_utc() + timedelta(hours=1))
        return "advanced"

    calls = [accept(o) for o in offer_ids] + [staff_book(p) for p in staff_patient_ids]
    calls += [wave_expiry, wave_expiry]
    results = race(app, calls)
    assert results["won"] == 1, results
    assert _active_appointments(slot_id) == 1
    assert not db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Offer)
        .where(Offer.slot_id == slot_id, Offer.status == OfferStatus.PENDING)
    )

    # Now release and re-book concurrently: still exactly one live booking.
    def release() -> str:
        release_slot(slot_id, SYSTEM)
        return "released"

    results = race(app, [release, release] + [staff_book(p) for p in staff_patient_ids])
    db.session.expire_all()
    assert _active_appointments(slot_id) <= 1
    assert not (set(results) - {"released", "won", "slot_filled", "integrity"}), results


def test_a_double_tap_on_one_offer_books_once(app: Flask) -> None:
    for _ in range(ROUNDS):
        slot_id, (offer_id, *_) = _broadcast_slot(2)

        def accept(offer_id: int = offer_id) -> str:
            responses.accept_offer(offer_id, actor=Actor.patient(1))
            return "won"

        results = race(app, [accept, accept], jitter=0.005)
        assert results == {"won": 1, "offer_accepted": 1}, results
        assert _active_appointments(slot_id) == 1
