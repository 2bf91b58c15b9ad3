"""``commit_or_conflict``: a lost race is a named conflict, a deadlock is rerun (real PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.db import db
from portal.models import Appointment, Patient
from portal.models.enums import AppointmentSource, AppointmentStatus
from portal.services.booking import SlotTaken
from portal.services.errors import Conflict
from portal.web.transaction import commit_or_conflict
from tests import factories as f


@pytest.mark.usefixtures("app")
def test_a_second_live_booking_of_a_slot_is_slot_filled_and_rolled_back() -> None:
    slot = f.slot()
    f.appointment(slot=slot)
    patient = f.patient()
    db.session.commit()

    def double_book() -> None:
        db.session.add(
            Appointment(
                slot_id=slot.id,
                patient_id=patient.id,
                status=AppointmentStatus.BOOKED,
                source=AppointmentSource.API,
            )
        )
        db.session.flush()

    with pytest.raises(SlotTaken):
        commit_or_conflict(double_book)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1


def test_the_loser_of_a_real_deadlock_is_rerun_and_both_commit(app: Flask) -> None:
    with app.app_context():
        first, second = f.patient(), f.patient()
        db.session.commit()
        ids = (first.id, second.id)
    barrier = threading.Barrier(2)
    runs: list[str] = []
    outcomes: list[str] = []

    def worker(name: str, order: tuple[int, int]) -> None:
        def action() -> None:
            runs.append(name)
            db.session.execute(sa.text("SET LOCAL deadlock_timeout = '50ms'"))
            for n, patient_id in enumerate(order):
                db.session.execute(
                    sa.update(Patient).where(Patient.id == patient_id).values(name=f"{name}{n}")
                )
                if n == 0 and runs.count(name) == 1:
                    barrier.wait(timeout=10)  # both hold their first row: a deadlock

        with app.app_context():
            try:
                commit_or_conflict(action)
                outcomes.append("committed")
            except Conflict as exc:
                outcomes.append(exc.code)

    threads = [
        threading.Thread(target=worker, args=("a", ids)),
        threading.Thread(target=worker, args=("b", ids[::-1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert outcomes == ["committed", "committed"]
    assert len(runs) == 3  # the deadlock's loser ran twice
