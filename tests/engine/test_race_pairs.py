"""Every pair of paths that can touch one slot, at the same instant, on real PostgreSQL.

Paths: a patient accepting an offer, booking it as an alternative, staff booking, API
booking, releases by staff and by the API, a deposit hold lapsing or being paid, a wave
expiring.
Each pair runs from the starting states where it matters (open with a live wave,
booked, held with a lapsed hold); afterwards the slot's status agrees with its
bookings, no offer is left pending on a taken slot, and nothing raised unanswered.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.db import db, now_utc
from portal.models import Offer, Patient, Slot
from portal.models.enums import (
    AppointmentSource,
    ChargeKind,
    OfferStatus,
    SlotStatus,
)
from portal.services import booking, holds, ledger, responses
from portal.services.audit import SYSTEM, Actor
from portal.services.filling import advance
from portal.services.release import release_slot
from tests import factories as f
from tests.races import assert_consistent, errors, race

#: Answers a path may legitimately get when another path got there first.
CONFLICTS = {
    "slot_filled",
    "slot_held",
    "slot_not_booked",
    "slot_not_bookable",
    "offer_withdrawn",
    "offer_expired",
    "offer_accepted",
    "patient_busy",
    "busy_retry",
    "no_pending_charge",
}


@dataclass
class Scene:
    slot_id: int
    offer_ids: list[int]  # pending offers of the live wave
    patient_ids: list[int]  # patients with no offer, free to be booked
    hold_offer_id: int | None = None


def _scene(start: str) -> Scene:
    scene = f.broadcast_scene(3)
    slot = db.session.get(Slot, scene.slot.id)
    free = [f.patient().id for _ in range(3)]
    hold_offer_id = None
    if start == "booked":
        booking.book_slot(slot.id, f.patient(), source=AppointmentSource.STAFF, actor=SYSTEM)
    elif start == "held":  # the last offer's patient is mid-payment, and the hold has lapsed
        hold_offer_id = scene.offers[-1].id
        db.session.execute(
            sa.update(Slot)
            .where(Slot.id == slot.id)
            .values(
                status=SlotStatus.HELD,
                hold_offer_id=hold_offer_id,
                hold_expires_at=now_utc() - timedelta(seconds=1),
            )
        )
        ledger.open_charge(
            patient_id=scene.offers[-1].patient_id,
            offer_id=hold_offer_id,
            kind=ChargeKind.DEPOSIT,
            amount_cents=5000,
            key=f"deposit:offer:{hold_offer_id}",
            description="Deposit",
            actor=SYSTEM,
        )
    db.session.commit()
    return Scene(slot.id, [o.id for o in scene.offers[:2]], free, hold_offer_id)


def _patient(patient_id: int) -> Patient:
    return db.session.get(Patient, patient_id)


PATHS: dict[str, Callable[[Scene, int], str]] = {}


def path(name: str) -> Callable[[Callable[[Scene, int], None]], None]:
    def register(func: Callable[[Scene, int], None]) -> None:
        def run(scene: Scene, n: int) -> str:
            func(scene, n)
            return "done"

        PATHS[name] = run

    return register


@path("accept")
def _accept(scene: Scene, n: int) -> None:
    responses.accept_offer(scene.offer_ids[n % 2], actor=SYSTEM)


@path("alternative")
def _alternative(scene: Scene, n: int) -> None:
    patient = _patient(scene.patient_ids[n])
    booking.book_slot(
        scene.slot_id, patient, source=AppointmentSource.ALTERNATIVE, actor=Actor.patient(1)
    )


@path("staff_book")
def _staff_book(scene: Scene, n: int) -> None:
    patient = _patient(scene.patient_ids[n])
    booking.book_slot(scene.slot_id, patient, source=AppointmentSource.STAFF, actor=SYSTEM)


@path("api_book")
def _api_book(scene: Scene, n: int) -> None:
    patient = _patient(scene.patient_ids[n])
    booking.book_slot(scene.slot_id, patient, source=AppointmentSource.API, actor=SYSTEM)


@path("staff_release")
def _staff_release(scene: Scene, n: int) -> None:
    release_slot(scene.slot_id, SYSTEM, reason="staff", only_booked=True)


@path("api_release")
def _api_release(scene: Scene, n: int) -> None:
    release_slot(scene.slot_id, SYSTEM, reason=None)


@path("hold_lapse")
def _hold_lapse(scene: Scene, n: int) -> None:
    if scene.hold_offer_id is not None:
        holds.release_hold(scene.slot_id, scene.hold_offer_id, actor=SYSTEM)


@path("hold_paid")
def _hold_paid(scene: Scene, n: int) -> None:
    if scene.hold_offer_id is not None:
        holds.complete_hold(scene.hold_offer_id, actor=SYSTEM)


@path("wave_expiry")
def _wave_expiry(scene: Scene, n: int) -> None:
    advance(scene.slot_id, now=now_utc() + timedelta(hours=1))


PAIRS = list(itertools.combinations_with_replacement(sorted(PATHS), 2))


def _starts(pair: tuple[str, str]) -> list[str]:
    if "hold_lapse" in pair or "hold_paid" in pair:
        return ["held", "held"]
    if any("release" in p for p in pair):
        return ["open", "booked"]
    return ["open", "open"]


def _assert_no_pending_offer_on_a_taken_slot(slot_id: int) -> None:
    slot = db.session.get(Slot, slot_id)
    if slot.status == SlotStatus.BOOKED:
        pending = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Offer)
            .where(Offer.slot_id == slot_id, Offer.status == OfferStatus.PENDING)
        )
        assert pending == 0


@pytest.mark.parametrize("pair", PAIRS, ids=["×".join(p) for p in PAIRS])
def test_two_paths_at_once_keep_the_slot_consistent(app: Flask, pair: tuple[str, str]) -> None:
    for start in _starts(pair):
        scene = _scene(start)
        calls = [
            lambda name=name, n=n, scene=scene: PATHS[name](scene, n) for n, name in enumerate(pair)
        ]
        outcomes = race(app, calls, jitter=0.005)
        assert not errors(outcomes), (start, outcomes)
        assert set(outcomes) <= {"done"} | CONFLICTS, (start, outcomes)
        assert_consistent()
        _assert_no_pending_offer_on_a_taken_slot(scene.slot_id)
