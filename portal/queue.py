"""RQ plumbing: the job registry, the Redis connection, and enqueueing after commit.

Services never import ``jobs``: they name a registered job — ``schedule("fill_slot",
slot_id, at=…)`` — and the registry enqueues it by its dotted path once the
transaction commits (a job must never look for rows that are not there yet). Each
job's queue, timeout, retry policy and job id are stated here, once. If Redis is
unreachable the enqueue is logged and dropped: the truth is in PostgreSQL and the
periodic sweeps (``reconcile``, ``dispatch_due``) pick up whatever was left undone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy.orm import Session

from portal.db import db, now_utc

log = logging.getLogger(__name__)

#: Workers take the first non-empty queue in this order. The periodic safety nets come
#: first: behind a backlog of sends they would run minutes late, just when needed.
QUEUES = ("sweeps", "filling", "notifications", "default")
_PENDING = "portal_after_commit"

#: Receives enqueues instead of Redis while set (the fill simulation runs jobs itself,
#: in virtual time): ``sink(spec, args, at, job_id)``.
JobSink = Callable[["JobSpec", tuple[Any, ...], datetime | None, str | None], None]
_sink: JobSink | None = None


@dataclass(frozen=True)
class JobSpec:
    """A registered job: where it lives and how it runs."""

    path: str  # "jobs.filling.fill_slot": RQ imports it in the worker
    queue: str
    timeout: int = 180
    retry: tuple[int, list[int]] | None = None  # (max, intervals in seconds)
    #: Builds a stable RQ job id from the arguments (dedupes re-enqueues), if any.
    job_id: Callable[..., str] | None = None
    #: Seconds between runs for periodic jobs started by ``portal cron``.
    every: int | None = None

    def rq_retry(self) -> Retry | None:
        return Retry(max=self.retry[0], interval=self.retry[1]) if self.retry else None


def send_job_id(attempt_id: int) -> str:
    return f"notify-attempt-{attempt_id}"


#: Every job the portal runs. Add a job here and in ``jobs/``; a test checks they match.
JOBS: dict[str, JobSpec] = {
    "fill_slot": JobSpec("jobs.filling.fill_slot", "filling"),
    "expire_wave": JobSpec("jobs.filling.expire_wave", "filling"),
    "expire_hold": JobSpec("jobs.filling.expire_hold", "filling"),
    "reconcile": JobSpec("jobs.filling.reconcile", "sweeps", timeout=120, every=60),
    "send_attempt": JobSpec(
        "jobs.notify.send_attempt",
        "notifications",
        timeout=60,
        retry=(3, [10, 30, 60]),
        job_id=send_job_id,
    ),
    "dispatch_due": JobSpec("jobs.notify.dispatch_due", "sweeps", timeout=120, every=30),
    "send_reminder": JobSpec("jobs.reminders.send_reminder", "notifications", timeout=60),
    "dispatch_reminders": JobSpec(
        "jobs.reminders.dispatch_reminders", "sweeps", timeout=120, every=60
    ),
    "sweep_no_shows": JobSpec("jobs.noshow.sweep_no_shows", "filling", timeout=240, every=300),
    "collect_charge": JobSpec(
        "jobs.payments.collect_charge",
        "default",
        timeout=60,
        retry=(5, [10, 30, 60, 300, 900]),
        job_id=lambda charge_id: f"collect-charge-{charge_id}",
    ),
    "refund_charge": JobSpec(
        "jobs.payments.refund_charge",
        "default",
        timeout=60,
        retry=(5, [10, 30, 60, 300, 900]),
        job_id=lambda charge_id: f"refund-charge-{charge_id}",
    ),
    "settle_payments": JobSpec("jobs.payments.settle_payments", "sweeps", timeout=120, every=60),
    "close_ended_outreach": JobSpec(
        "jobs.outreach.close_ended_outreach", "sweeps", timeout=60, every=60
    ),
}


def redis_connection() -> Redis:
    """Return the app's Redis client (created once per app)."""
    ext = current_app.extensions
    if "portal_redis" not in ext:
        url = current_app.config["REDIS_URL"]
        if not url:
            raise RuntimeError("REDIS_URL is not configured")
        ext["portal_redis"] = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
    return ext["portal_redis"]


def get_queue(name: str) -> Queue:
    """Return the named RQ queue on the app's Redis."""
    return Queue(name, connection=redis_connection())


def schedule(
    name: str,
    *args: Any,
    at: datetime | None = None,
    job_id: str | None = None,
    at_front: bool = False,
) -> None:
    """Run registered job ``name(*args)`` after the current transaction commits.

    ``at`` (aware UTC) defers it; ``job_id`` overrides the registered id builder;
    ``at_front`` puts an immediate job ahead of those already waiting in its queue.
    Nothing is enqueued if the transaction rolls back.
    """
    spec = JOBS[name]
    if job_id is None and spec.job_id is not None:
        job_id = spec.job_id(*args)
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so a rollback before any SQL still drops what was scheduled
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    pending.append(
        {
            "spec": spec,
            "args": args,
            "at": at,
            "job_id": job_id,
            "at_front": at_front,
            "app": current_app._get_current_object(),  # type: ignore[attr-defined]
        }
    )


def enqueue_now(name: str, *args: Any, job_id: str | None = None) -> bool:
    """Enqueue registered job ``name`` at once (sweeps that run outside a transaction)."""
    spec = JOBS[name]
    if job_id is None and spec.job_id is not None:
        job_id = spec.job_id(*args)
    return _enqueue(spec, args, None, job_id)


@contextmanager
def divert_jobs(sink: JobSink) -> Iterator[JobSink]:
    """Hand every enqueue in this process to ``sink`` instead of Redis, for a block."""
    global _sink
    previous, _sink = _sink, sink
    try:
        yield sink
    finally:
        _sink = previous


def enqueue_unless_waiting(name: str, *args: Any) -> bool:
    """Enqueue registered job ``name`` unless its job (by id) is still going to run.

    For sweeps that redo what a lost job left undone: a job still queued, scheduled for
    a retry, or started recently enough to be alive is left alone, so no work is doubled.
    """
    spec = JOBS[name]
    if spec.job_id is None:
        raise ValueError(f"{name} has no stable job id to look up")
    job_id = spec.job_id(*args)
    if _sink is not None:  # diverted: the sink runs each job itself, nothing waits in Redis
        return _enqueue(spec, args, None, job_id)
    try:
        existing = Job.fetch(job_id, connection=redis_connection())
        if _still_waiting(existing, spec):
            return False
    except NoSuchJobError:
        pass
    except RedisError as exc:
        log.warning("could not look up job %s (%s)", job_id, type(exc).__name__)
        return False
    return _enqueue(spec, args, None, job_id)


def _still_waiting(existing: Job, spec: JobSpec) -> bool:
    status = existing.get_status()
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return True
    if status == JobStatus.STARTED and existing.started_at is not None:
        started = existing.started_at.replace(tzinfo=existing.started_at.tzinfo or UTC)
        return now_utc() - started < timedelta(seconds=2 * spec.timeout)
    return False


def _enqueue(
    spec: JobSpec,
    args: tuple[Any, ...],
    at: datetime | None,
    job_id: str | None,
    at_front: bool = False,
) -> bool:
    if _sink is not None:
        _sink(spec, args, at, job_id)
        return True
    options: dict[str, Any] = {"retry": spec.rq_retry(), "job_timeout": spec.timeout}
    if at_front and at is None:
        options["at_front"] = True
    if job_id:
        options["job_id"] = job_id
    try:
        queue = get_queue(spec.queue)
        if at is not None:
            queue.enqueue_at(_whole_second_after(at), spec.path, *args, **options)
        else:
            queue.enqueue(spec.path, *args, **options)
    except RedisError as exc:
        log.warning(
            "enqueue of %s failed (%s); the periodic sweeps will pick it up",
            spec.path,
            type(exc).__name__,
        )
        return False
    return True


def _whole_second_after(at: datetime) -> datetime:
    """``at`` rounded up to a whole second: RQ files a scheduled job under its time with the
    fraction cut off, so a job for 07.6 would reach a worker at 07, before its work is due
    (a reminder, a retried text), and be left to the next sweep."""
    return at if at.microsecond == 0 else at.replace(microsecond=0) + timedelta(seconds=1)


def _enqueue_batch(app: Any, queue_name: str, items: list[dict[str, Any]]) -> None:
    """Enqueue many immediate jobs of one queue in one Redis pipeline (one round trip)."""
    if _sink is not None:  # diverted (the simulation): each job to the sink, none to Redis
        for item in items:
            _sink(item["spec"], item["args"], None, item["job_id"])
        return
    # Each job sent to the front is pushed ahead of the one before it: push those in
    # reverse so they stand in the order they were scheduled (a wave's best-ranked first).
    items = [i for i in items if not i["at_front"]] + [i for i in reversed(items) if i["at_front"]]
    with app.app_context():
        try:
            queue = get_queue(queue_name)
            queue.enqueue_many(  # one pipeline, executed once
                [
                    Queue.prepare_data(
                        item["spec"].path,
                        item["args"],
                        timeout=item["spec"].timeout,
                        job_id=item["job_id"],
                        retry=item["spec"].rq_retry(),
                        at_front=item["at_front"],
                    )
                    for item in items
                ]
            )
        except RedisError as exc:
            log.warning(
                "enqueue of %s jobs on %s failed (%s); the periodic sweeps will pick them up",
                len(items),
                queue_name,
                type(exc).__name__,
            )


@sa.event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    batches: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for item in session.info.pop(_PENDING, None) or ():
        if item["at"] is None:  # immediate jobs go together, per queue
            batches.setdefault((id(item["app"]), item["spec"].queue), []).append(item)
            continue
        with item["app"].app_context():
            _enqueue(item["spec"], item["args"], item["at"], item["job_id"])
    for (_, queue_name), items in batches.items():
        if len(items) == 1:
            with items[0]["app"].app_context():
                _enqueue(
                    items[0]["spec"],
                    items[0]["args"],
                    None,
                    items[0]["job_id"],
                    items[0]["at_front"],
                )
        else:
            _enqueue_batch(items[0]["app"], queue_name, items)


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)
