"""The losers of one race share one read of the slot's candidates (issue: the accept storm).

Each loser still gets *their* alternatives: scored against their own waitlist entry and
never overlapping a visit they already have.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Patient, Slot
from portal.models.enums import AppointmentSource
from portal.services import alternatives, booking, responses
from portal.services.alternatives import alternatives_after_race, find_alternatives
from portal.services.audit import SYSTEM, Actor
from portal.services.settings import settings
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")


def _slot_reads(run: Any) -> tuple[Any, int]:
    """Run; return its result and how many statements read candidate slots."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The candidate queries (they look for closures), not a plain lookup of a slot.
        if statement.lstrip().upper().startswith("SELECT") and "closure" in statement:
            seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        return run(), len(seen)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def _lost_race(patients: int) -> tuple[Slot, list[Patient]]:
    scene = f.broadcast_scene(patients)
    winner = scene.offers[0]
    responses.accept_offer(winner.id, actor=Actor.patient(winner.patient_id))
    db.session.commit()
    losers = [db.session.get(Patient, o.patient_id) for o in scene.offers[1:]]
    return db.session.get(Slot, scene.slot.id), losers


def _ids(found: list[alternatives.Alternative]) -> list[tuple[int, int, list[str]]]:
    return [(a.slot.id, a.score, a.reasons) for a in found]


def test_every_loser_sees_what_their_own_query_would_show_from_one_read() -> None:
    slot, losers = _lost_race(6)

    shared, reads = _slot_reads(lambda: [alternatives_after_race(p, slot) for p in losers])

    assert reads == 1
    assert all(found for found in shared)
    for patient, found in zip(losers, shared, strict=True):
        assert _ids(found) == _ids(find_alternatives(patient, slot))
        assert all(db.session.get(Slot, a.slot.id) is a.slot for a in found)  # this session's


def test_a_losers_own_visit_keeps_overlapping_times_out() -> None:
    slot, losers = _lost_race(3)
    busy, free = losers[0], losers[1]
    before = [a.slot.id for a in alternatives_after_race(free, slot)]
    taken_time = db.session.get(Slot, before[0])
    clash = f.slot(  # another practitioner, same time: booked by ``busy``
        start_at=taken_time.start_at,
        practitioner=f.practitioner(location=taken_time.location),
        service=f.service(category="other", duration_minutes=30),
    )
    booking.book_slot(clash.id, busy, source=AppointmentSource.STAFF, actor=SYSTEM)
    db.session.commit()

    mine = [a.slot.id for a in alternatives_after_race(busy, slot)]

    assert taken_time.id not in mine
    assert taken_time.id in [a.slot.id for a in alternatives_after_race(free, slot)]
    assert mine == [a.slot.id for a in find_alternatives(busy, slot)]


def test_the_shared_read_is_redone_after_its_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    slot, losers = _lost_race(2)
    _, first = _slot_reads(lambda: alternatives_after_race(losers[0], slot))
    later = f.slot(
        start_at=slot.start_at + timedelta(hours=1),
        practitioner=slot.practitioner,
        service=slot.service,
    )
    db.session.commit()
    _, cached = _slot_reads(lambda: alternatives_after_race(losers[0], slot))
    monkeypatch.setattr(alternatives, "SHARED_SECONDS", 0.0)

    found, again = _slot_reads(lambda: alternatives_after_race(losers[0], slot))

    assert (first, cached, again) == (1, 0, 1)
    assert later.id in [a.slot.id for a in found]


def test_a_slot_this_session_already_holds_is_not_overwritten_by_the_shared_read() -> None:
    slot, losers = _lost_race(3)
    first = alternatives_after_race(losers[0], slot)[0].slot
    first_id = first.id
    db.session.expunge_all()
    slot = db.session.get(Slot, slot.id)
    mine = db.session.get(Slot, first_id)
    mine.current_wave = 7  # a change in this session, not yet flushed

    found = [a.slot for a in alternatives_after_race(losers[1], slot) if a.slot.id == first_id]

    assert found == [mine] and mine.current_wave == 7


def test_a_time_ending_past_the_horizon_never_overlaps_the_losers_visit_after_it() -> None:
    slot, losers = _lost_race(3)
    loser = losers[0]
    horizon_end = now_utc() + timedelta(hours=settings().alternatives_horizon_hours)
    edge = f.slot(  # starts inside the horizon, ends past it
        start_at=horizon_end - timedelta(minutes=10),
        minutes=60,
        practitioner=slot.practitioner,
        service=slot.service,
    )
    own = f.slot(  # the loser's visit, starting past the horizon, overlapping ``edge``
        start_at=horizon_end + timedelta(minutes=10),
        practitioner=f.practitioner(location=slot.location),
        service=f.service(category="other", duration_minutes=30),
    )
    booking.book_slot(own.id, loser, source=AppointmentSource.STAFF, actor=SYSTEM)
    db.session.commit()

    assert edge.id not in [a.slot.id for a in find_alternatives(loser, slot, limit=50)]
    assert edge.id not in [a.slot.id for a in alternatives_after_race(loser, slot)]
