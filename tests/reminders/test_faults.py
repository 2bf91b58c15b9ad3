"""Reminders survive a killed worker and an emptied Redis (real RQ worker processes).

K visits are booked with a short lead time so their reminders fall due within seconds.
Two workers (with scheduler) start sending them; both are killed with ``kill -9``; Redis
is emptied (every scheduled reminder job is gone); meanwhile some visits are cancelled
and some moved. New workers start and the sweeps run as ``portal cron`` would. Every
visit still booked for its time gets exactly one reminder text; cancelled and moved
visits get none for the old time; nothing is sent twice.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from jobs.notify import dispatch_due
from jobs.reminders import dispatch_reminders
from portal.db import db, now_utc
from portal.models import Notification, OutboxMessage, Reminder
from portal.models.enums import AppointmentSource, Channel, Purpose, ReminderStatus
from portal.services import booking
from portal.services.audit import SYSTEM, Actor
from portal.services.notify import sending
from portal.services.release import release_slot
from portal.services.reschedule import fee_for_leaving_old_time, reschedule_appointment
from portal.services.settings import set_setting
from tests import factories as f
from tests.conftest import TEST_SECRET
from tests.fakes.redis_server import PrivateRedis
from tests.notify.test_faults import Workers, wait_for

K = 14
LEAD_HOURS = 3


@pytest.fixture
def world(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    private = PrivateRedis(tmp_path).start()
    monkeypatch.setitem(app.config, "REDIS_URL", private.url)
    app.extensions.pop("portal_redis", None)
    monkeypatch.setattr(sending, "ENQUEUE_GRACE", timedelta(seconds=1))
    workers = Workers(
        {
            "TESTING": True,
            "SECRET_KEY": TEST_SECRET,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "PUBLIC_BASE_URL": app.config["PUBLIC_BASE_URL"],
            "REDIS_URL": private.url,
        },
        tmp_path,
    )
    try:
        yield private, workers
    finally:
        workers.stop()
        private.stop()
        app.extensions.pop("portal_redis", None)


def test_reminders_survive_a_killed_worker_and_an_emptied_redis(
    world, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    private, workers = world
    set_setting("quiet_hours", {"start": "00:00", "end": "00:00"})  # the suite runs at any hour
    set_setting("reminder_cadence_hours", {"default": [LEAD_HOURS]})
    practitioner, service = f.practitioner(), f.service(duration_minutes=30)
    db.session.commit()
    started = time.monotonic()
    base = now_utc() + timedelta(hours=LEAD_HOURS, seconds=4)
    visits = []
    for i in range(K):  # reminders due 4 s, 5.5 s, 7 s, … from now
        slot = f.slot(
            start_at=base + timedelta(seconds=1.5 * i), practitioner=practitioner, service=service
        )
        patient = f.patient(name=f"Fault Patient {i}", phone_e164=f"+1212555{3000 + i:04d}")
        visits.append(
            booking.book_slot(slot.id, patient, source=AppointmentSource.API, actor=SYSTEM)
        )
        db.session.commit()
    spare = [
        f.slot(
            start_at=base + timedelta(days=1, hours=i), practitioner=practitioner, service=service
        )
        for i in range(2)
    ]
    db.session.commit()

    workers.start(2)
    # Generous: on a loaded machine two workers take a while to start (it returns at once
    # when the reminders are out).
    assert wait_for(lambda: _texts() >= 2, 90), f"no reminder went out\n{workers.log_tail()}"
    workers.kill_all()  # kill -9, wherever they were
    killed = len(workers.procs)
    workers.procs.clear()
    redis.Redis.from_url(private.url).flushall()  # every scheduled reminder job is gone

    cancelled, moved = visits[-2:], visits[-4:-2]
    for visit in cancelled:
        release_slot(visit.slot_id, SYSTEM)
    for visit, target in zip(moved, spare, strict=True):
        # Visits this close are moved at the policy's late-change fee, accepted here.
        fee = fee_for_leaving_old_time(visit, now_utc())
        reschedule_appointment(
            visit.id, target.id, Actor.patient(visit.patient_id), accepted_fee_cents=fee
        )
    db.session.commit()
    workers.start(2)
    expected = visits[: K - 4]
    last_due = base + timedelta(seconds=1.5 * (K - 1)) - timedelta(hours=LEAD_HOURS)

    def settled() -> bool:
        dispatch_reminders()  # what `portal cron` runs every minute …
        dispatch_due()  # … and every 30 s
        db.session.commit()
        return now_utc() > last_due and _texts() >= len(expected) and _pending_sends() == 0

    assert wait_for(settled, 60, step=0.5), (
        f"only {_texts()} of {len(expected)} reminders sent\n{workers.log_tail()}"
    )
    db.session.expire_all()

    notes = db.session.scalars(
        sa.select(Notification).where(Notification.purpose == Purpose.REMINDER)
    ).all()
    per_visit = Counter(n.appointment_id for n in notes)
    outbox = db.session.scalars(_reminder_texts()).all()
    per_attempt = Counter(m.attempt_id for m in outbox)
    reminders = db.session.scalars(sa.select(Reminder)).all()
    states = Counter(r.status.value for r in reminders)
    lost = [v.id for v in expected if per_visit[v.id] != 1]
    stale = [v.id for v in cancelled + moved if per_visit[v.id]]
    twice = {a: n for a, n in per_attempt.items() if n > 1}
    with capsys.disabled():
        print(
            f"\n[reminder faults] K={K} in {time.monotonic() - started:.1f}s: "
            f"texts={len(outbox)} expected={len(expected)} lost={len(lost)} "
            f"stale={len(stale)} sent_twice={len(twice)} workers_killed={killed} "
            f"redis_flushed=1 reminders={dict(states)}"
        )
    assert lost == [] and stale == [] and twice == {}
    assert len(outbox) == len(expected)
    live = [r for r in reminders if r.status == ReminderStatus.SCHEDULED]
    assert {r.appointment_id for r in live} == {v.id for v in moved}  # their new times, later


def _reminder_texts() -> sa.Select:
    from portal.models import NotificationAttempt

    return (
        sa.select(OutboxMessage)
        .join(NotificationAttempt, NotificationAttempt.id == OutboxMessage.attempt_id)
        .where(
            OutboxMessage.channel == Channel.SMS,
            NotificationAttempt.purpose == Purpose.REMINDER,
        )
    )


def _texts() -> int:
    db.session.expire_all()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(_reminder_texts().subquery()))
    db.session.rollback()
    return count or 0


def _pending_sends() -> int:
    from portal.models import NotificationAttempt
    from portal.models.enums import AttemptStatus

    count = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(NotificationAttempt)
        .where(NotificationAttempt.status.in_([AttemptStatus.QUEUED, AttemptStatus.SENDING]))
    )
    db.session.rollback()
    return count or 0
