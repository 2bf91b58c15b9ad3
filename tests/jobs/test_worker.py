"""Jobs through a real RQ worker on real Redis: enqueued after commit, run in a work-horse."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from rq import Queue

from jobs.worker import run_worker
from portal.db import db, now_utc
from portal.models import Offer, OutboxMessage
from portal.models.enums import OfferStatus
from portal.queue import redis_connection
from portal.services import filling
from portal.services.audit import SYSTEM
from portal.services.slots import create_slot
from tests import factories as f


def test_opening_a_slot_enqueues_filling_only_after_commit(app: Flask) -> None:
    practitioner = f.practitioner()
    service = f.service()
    for _ in range(2):
        f.waitlist_entry(
            service_id=service.id, location_id=practitioner.location_id, short_notice_ok=True
        )
    db.session.commit()
    queue = Queue("filling", connection=redis_connection())
    start = now_utc() + timedelta(days=1)
    create_slot(practitioner=practitioner, service=service, start_at=start, actor=SYSTEM)
    assert queue.count == 0  # nothing is enqueued before the transaction commits
    db.session.commit()
    assert queue.count == 1

    # One real forking worker drains the filling queue, then the notification jobs.
    run_worker(app, burst=True, with_scheduler=False)
    db.session.expire_all()
    offers = db.session.scalars(sa.select(Offer)).all()
    assert len(offers) == 2 and {o.status for o in offers} == {OfferStatus.PENDING}
    # The offer messages went through the notifications queue to the outbox backend.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 2


def test_a_rolled_back_transaction_enqueues_nothing(app: Flask) -> None:
    slot = f.slot()
    db.session.commit()
    filling.schedule_fill(slot.id)
    db.session.rollback()
    db.session.commit()
    assert Queue("filling", connection=redis_connection()).count == 0


def test_reconcile_restarts_a_slot_whose_job_was_lost(app: Flask) -> None:
    from jobs.filling import reconcile

    slot = f.slot()
    f.waitlist_entry(slot=slot)
    db.session.commit()  # no job was enqueued for this slot (as if Redis had been down)
    tally = reconcile()
    assert tally["advanced"] == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Offer)) == 1
