"""Jobs scheduled by name reach Redis after commit, or a diverting sink instead."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from portal.db import db, now_utc
from portal.queue import JOBS, divert_jobs, get_queue, schedule

pytestmark = pytest.mark.usefixtures("app")


def _queued(name: str) -> list[str]:
    queue = get_queue(name)
    return list(queue.job_ids) + list(queue.scheduled_job_registry.get_job_ids())


def test_a_diverted_block_hands_every_job_to_the_sink_and_none_to_redis() -> None:
    received: list[tuple[str, tuple[Any, ...], bool]] = []
    before = _queued("filling")
    later = now_utc() + timedelta(minutes=5)
    with divert_jobs(lambda spec, args, at, job_id: received.append((spec.path, args, bool(at)))):
        # several immediate jobs of one queue go out together (the batched path) ...
        schedule("fill_slot", 101)
        schedule("fill_slot", 102)
        schedule("expire_wave", 103, 1)
        # ... a deferred one alone
        schedule("expire_hold", 104, 7, at=later)
        db.session.commit()
    assert sorted(received) == sorted(
        [
            (JOBS["fill_slot"].path, (101,), False),
            (JOBS["fill_slot"].path, (102,), False),
            (JOBS["expire_wave"].path, (103, 1), False),
            (JOBS["expire_hold"].path, (104, 7), True),
        ]
    )
    assert _queued("filling") == before


def test_immediate_jobs_of_one_queue_reach_redis_together_after_commit() -> None:
    queue = get_queue("filling")
    queue.empty()
    schedule("fill_slot", 201)
    schedule("fill_slot", 202)
    assert queue.count == 0  # nothing before the commit
    db.session.commit()
    assert sorted(tuple(job.args) for job in queue.jobs) == [(201,), (202,)]
    queue.empty()


def test_a_rolled_back_transaction_schedules_nothing() -> None:
    queue = get_queue("filling")
    queue.empty()
    schedule("fill_slot", 301)
    db.session.rollback()
    db.session.commit()
    assert queue.count == 0


def test_jobs_sent_to_the_front_together_keep_the_order_they_were_scheduled_in() -> None:
    # A wave's offer texts go ahead of messages already waiting, best-ranked patient first.
    queue = get_queue("notifications")
    queue.empty()
    schedule("send_attempt", 900)  # already waiting, behind
    db.session.commit()
    for attempt_id in (901, 902, 903):
        schedule("send_attempt", attempt_id, at_front=True)
    db.session.commit()
    assert [tuple(job.args) for job in queue.jobs] == [(901,), (902,), (903,), (900,)]
    queue.empty()


def test_a_deferred_job_never_comes_due_before_its_time() -> None:
    """RQ keeps a scheduled job's time in whole seconds, cutting the fraction off: a job
    for 12:00:07.6 would be handed to a worker at 12:00:07, find its work not yet due
    (a reminder, a retried text) and leave it to the next sweep, up to a minute late."""
    queue = get_queue("notifications")
    registry = queue.scheduled_job_registry
    due = (now_utc() + timedelta(minutes=5)).replace(microsecond=600_000)
    schedule("send_reminder", 401, at=due, job_id="reminder-401-test")
    schedule("send_reminder", 402, at=due.replace(microsecond=0), job_id="reminder-402-test")
    db.session.commit()
    try:
        fractional = registry.get_scheduled_time("reminder-401-test")
        whole = registry.get_scheduled_time("reminder-402-test")
        assert fractional.timestamp() >= due.timestamp()
        assert fractional.timestamp() - due.timestamp() < 1
        assert whole.timestamp() == due.replace(microsecond=0).timestamp()  # not pushed later
    finally:
        for job_id in ("reminder-401-test", "reminder-402-test"):
            registry.remove(job_id, delete_job=True)
