"""Notification jobs (queue ``notifications``): send one attempt; sweep what was left.

``send_attempt`` runs once per attempt (job id ``notify-attempt-<id>``) with RQ
``Retry`` for transient provider errors. ``dispatch_due`` runs every 30 s from
``portal cron``: it re-enqueues due attempts whose job was lost (Redis was down),
resolves sends a dead worker left in ``sending``, and escalates overdue receipts.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from jobs import job
from portal.db import db, now_utc
from portal.queue import JOBS, enqueue_now, redis_connection, send_job_id
from portal.services.notify import sending

log = logging.getLogger(__name__)

#: A started send older than this cannot still be running (RQ kills it at its timeout).
SEND_TIMEOUT = JOBS["send_attempt"].timeout

_WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


class RetryLater(Exception):
    """A transient provider error: RQ runs the job again after its backoff."""


def _retry_delay() -> float | None:
    """Seconds until RQ retries the running job, or None when it will not."""
    current = get_current_job()
    if current is None or not current.retries_left:
        return None
    return float(current.get_retry_interval())


@job
def send_attempt(attempt_id: int) -> str | None:
    """Send one notification attempt if it is still queued and due."""
    outcome = sending.send_attempt(attempt_id, retry_delay=_retry_delay())
    if outcome == sending.Outcome.RETRY:
        raise RetryLater(f"attempt {attempt_id}: transient provider error")
    return outcome.value if outcome else None


@job
def dispatch_due(now: datetime | None = None) -> dict[str, int]:
    """Resolve stranded sends and overdue receipts; re-enqueue due attempts."""
    now = now or now_utc()
    tally = {"stranded": 0, "timed_out": 0, "enqueued": 0}
    for attempt_id in sending.stranded_attempt_ids(now):
        tally["stranded"] += sending.resolve_stranded(attempt_id, now)
    for attempt_id in sending.overdue_receipt_ids(now):
        tally["timed_out"] += sending.expire_receipt(attempt_id, now)
    due = sending.due_attempt_ids(now)
    db.session.rollback()
    for attempt_id in due:
        tally["enqueued"] += _enqueue_unless_waiting(attempt_id)
    if any(tally.values()):
        log.info("notification dispatch: %s", tally)
    return tally


def _enqueue_unless_waiting(attempt_id: int) -> bool:
    job_id = send_job_id(attempt_id)
    try:
        if _still_waiting(Job.fetch(job_id, connection=redis_connection())):
            return False
    except NoSuchJobError:
        pass
    except RedisError as exc:
        log.warning("dispatch could not look up attempt %s (%s)", attempt_id, type(exc).__name__)
        return False
    return enqueue_now("send_attempt", attempt_id)


def _still_waiting(existing: Job) -> bool:
    """Whether the attempt's job will still run (a started one only while it can be alive)."""
    status = existing.get_status()
    if status in _WAITING:
        return True
    if status == JobStatus.STARTED and existing.started_at is not None:
        started = existing.started_at.replace(tzinfo=existing.started_at.tzinfo or UTC)
        return now_utc() - started < timedelta(seconds=2 * SEND_TIMEOUT)
    return False
