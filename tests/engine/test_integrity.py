"""A slot is booked exactly when it has one live booking — under every race (SPEC §2).

The ghost booking: a release that loaded the slot before a booking committed used to
"reopen" its stale copy (already ``open`` in the identity map, so no UPDATE was sent)
while cancelling the new appointment, leaving the slot ``booked`` with nobody in it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Patient, Slot
from portal.models.enums import AppointmentSource, AppointmentStatus, SlotStatus
from portal.services.audit import SYSTEM
from portal.services.booking import book_slot
from portal.services.integrity import find_violations, repair
from portal.services.release import release_slot
from tests import factories as f
from tests.races import assert_consistent, errors, race

ROUNDS = 200


def _scene(rounds: int) -> list[tuple[int, int, bool]]:
    """``rounds`` slots an hour apart, half booked; (slot id, a free patient id, booked?)."""
    rng = random.Random(7)
    practitioner, service = f.practitioner(), f.service(duration_minutes=30)
    start = (now_utc() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    scene = []
    for n in range(rounds):
        booked = rng.random() < 0.5
        slot = f.slot(
            start_at=start + timedelta(hours=n),
            practitioner=practitioner,
            service=service,
            status=SlotStatus.BOOKED if booked else SlotStatus.OPEN,
        )
        if booked:
            f.appointment(slot=slot)
        scene.append((slot.id, f.patient().id, booked))
    db.session.commit()
    return scene


def _release_after_loading(slot_id: int) -> tuple[Callable[[], None], Callable[[], str]]:
    """A release that read the slot first, as the API and staff views do."""

    def load() -> None:
        db.session.get(Slot, slot_id)

    def release() -> str:
        release_slot(slot_id, SYSTEM, reason="test")
        return "released"

    return load, release


def _book(slot_id: int, patient_id: int, source: AppointmentSource) -> Callable[[], str]:
    def call() -> str:
        book_slot(slot_id, db.session.get(Patient, patient_id), source=source, actor=SYSTEM)
        return "booked"

    return call


def test_release_racing_a_booking_never_leaves_a_ghost(app: Flask) -> None:
    outcomes: Counter[str] = Counter()
    for slot_id, patient_id, _ in _scene(ROUNDS):
        book = _book(slot_id, patient_id, AppointmentSource.API)
        outcomes += race(app, [_release_after_loading(slot_id), book], jitter=0.01)
    assert not errors(outcomes), outcomes
    assert outcomes["released"] == ROUNDS
    assert set(outcomes) <= {"released", "booked", "slot_filled"}
    assert_consistent()


def test_two_releases_and_two_bookings_at_once(app: Flask) -> None:
    for slot_id, patient_id, _ in _scene(25):
        other = f.patient().id
        db.session.commit()
        outcomes = race(
            app,
            [
                _release_after_loading(slot_id),
                _release_after_loading(slot_id),
                _book(slot_id, patient_id, AppointmentSource.API),
                _book(slot_id, other, AppointmentSource.STAFF),
            ],
            jitter=0.01,
        )
        assert not errors(outcomes), outcomes
    assert_consistent()


@pytest.mark.usefixtures("app")
def test_the_database_refuses_to_commit_a_ghost() -> None:
    slot = f.slot()
    f.appointment(slot=slot)  # the factory marks the slot booked with it
    db.session.commit()
    db.session.execute(
        sa.update(Appointment)
        .where(Appointment.slot_id == slot.id)
        .values(status=AppointmentStatus.CANCELLED)
    )
    with pytest.raises(sa.exc.IntegrityError, match="active appointment"):
        db.session.commit()
    db.session.rollback()


@pytest.mark.usefixtures("app")
def test_the_database_refuses_an_appointment_in_an_open_slot() -> None:
    slot = f.slot()
    db.session.commit()
    db.session.add(
        Appointment(
            slot_id=slot.id,
            patient_id=f.patient().id,
            status=AppointmentStatus.BOOKED,
            source=AppointmentSource.API,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def _without_the_check(statement: sa.Executable) -> None:
    """Write an inconsistent state as old code could have (triggers off for this session)."""
    db.session.execute(sa.text("SET LOCAL session_replication_role = replica"))
    db.session.execute(statement)
    db.session.commit()


@pytest.mark.usefixtures("app")
def test_reconcile_repairs_a_ghost_and_an_unmarked_booking_with_audit() -> None:
    ghost = f.slot(start_at=now_utc() + timedelta(days=3))
    unmarked = f.slot(start_at=now_utc() + timedelta(days=4))
    f.appointment(slot=ghost)
    f.appointment(slot=unmarked)
    db.session.commit()
    _without_the_check(
        sa.update(Appointment)
        .where(Appointment.slot_id == ghost.id)
        .values(status=AppointmentStatus.CANCELLED)
    )
    _without_the_check(sa.update(Slot).where(Slot.id == unmarked.id).values(status=SlotStatus.OPEN))
    found = {v.slot_id: v.kind for v in find_violations()}
    assert found == {ghost.id: "ghost", unmarked.id: "unmarked"}

    from jobs.filling import reconcile

    tally = reconcile()

    assert tally["repaired"] == 2
    assert_consistent()
    assert db.session.get(Slot, ghost.id).status == SlotStatus.OPEN
    assert db.session.get(Slot, unmarked.id).status == SlotStatus.BOOKED
    repaired = db.session.scalars(
        sa.select(AuditEvent.entity_id).where(AuditEvent.action == "slot.repaired")
    ).all()
    assert sorted(repaired) == sorted([ghost.id, unmarked.id])


@pytest.mark.usefixtures("app")
def test_repair_leaves_a_consistent_slot_alone() -> None:
    slot = f.slot()
    db.session.commit()
    from portal.services.integrity import Violation

    assert repair(Violation(slot.id, SlotStatus.OPEN, 0, "ghost")) is False


def test_a_release_that_read_the_slot_before_a_booking_cancels_and_reopens(app: Flask) -> None:
    """The interleaving behind the ghost, made deterministic: read, book elsewhere, release."""
    slot = f.slot()
    patient = f.patient()
    db.session.commit()
    db.session.get(Slot, slot.id)  # the release's request read the slot while it was open
    with app.app_context():  # meanwhile another request books it
        book_slot(slot.id, db.session.get(Patient, patient.id), source="api", actor=SYSTEM)
        db.session.commit()

    release_slot(slot.id, SYSTEM, reason="test")
    db.session.commit()

    assert_consistent()
    assert db.session.get(Slot, slot.id).status == SlotStatus.OPEN
    cancelled = db.session.scalar(sa.select(Appointment).where(Appointment.slot_id == slot.id))
    assert cancelled.status == AppointmentStatus.CANCELLED
