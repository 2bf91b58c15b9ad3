"""Accepting an offer of a broadcast wave costs a constant number of SQL statements.

The winner's transaction holds the slot row while it withdraws every other offer and
tells every other patient; each statement it runs there is time every loser waits. So
the work is set-based: the same statements for a wave of 5 as for a wave of 50.
(Counting statements is not timing: the figures come from ``bench/``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from portal.db import db
from portal.models import AuditEvent, Notification, NotificationAttempt, Offer
from portal.models.enums import AttemptStatus, OfferStatus, Purpose
from portal.queue import _PENDING
from portal.services import responses
from portal.services.audit import Action, Actor
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")

#: Statements from the conditional UPDATE of the slot to the commit, whatever the wave.
LOCKED_BOUND = 30


@contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def _accept_first(patients: int) -> tuple[list[str], list[dict[str, Any]], int]:
    """Accept the first offer of a fresh wave; (statements, jobs queued, slot id)."""
    scene = f.broadcast_scene(patients)
    offer_id, patient_id, slot_id = scene.offers[0].id, scene.offers[0].patient_id, scene.slot.id
    db.session.remove()  # the request starts with an empty session
    with statements() as seen:
        outcome = responses.accept_offer(offer_id, actor=Actor.patient(patient_id))
        jobs = list(db.session.info.get(_PENDING, []))
        db.session.commit()
    assert outcome.appointment is not None
    return seen, jobs, slot_id


def _from_slot_update(seen: list[str]) -> list[str]:
    first = next(i for i, s in enumerate(seen) if s.lstrip().upper().startswith("UPDATE SLOT"))
    return seen[first:]


def test_a_50_offer_wave_costs_the_same_statements_as_a_5_offer_wave() -> None:
    small, _, _ = _accept_first(5)
    large, jobs, slot_id = _accept_first(50)

    assert len(_from_slot_update(large)) <= LOCKED_BOUND, large
    assert len(large) == len(small), (len(small), len(large))

    # ... and the work is all there: 49 withdrawn, 49 told (each with a queued text), audited.
    db.session.expire_all()
    offers = db.session.scalars(sa.select(Offer).where(Offer.slot_id == slot_id)).all()
    withdrawn = [o for o in offers if o.status == OfferStatus.WITHDRAWN]
    assert len(withdrawn) == 49
    told = db.session.scalars(
        sa.select(Notification).where(
            Notification.purpose == Purpose.SLOT_FILLED,
            Notification.offer_id.in_([o.id for o in withdrawn]),
        )
    ).all()
    assert sorted(n.patient_id for n in told) == sorted(o.patient_id for o in withdrawn)
    attempts = db.session.scalars(
        sa.select(NotificationAttempt).where(
            NotificationAttempt.notification_id.in_([n.id for n in told])
        )
    ).all()
    queued = [a for a in attempts if a.status == AttemptStatus.QUEUED]  # (texts skip at night)
    assert sorted(a.notification_id for a in queued) == sorted(n.id for n in told)
    sends = {job["args"][0] for job in jobs if job["spec"].path == "jobs.notify.send_attempt"}
    assert {a.id for a in queued} <= sends
    audited = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == Action.OFFER_WITHDRAWN.value,
            AuditEvent.entity_id.in_([o.id for o in withdrawn]),
        )
    )
    assert audited == 49
