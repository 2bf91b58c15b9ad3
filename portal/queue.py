"""RQ plumbing: the Redis connection, named queues, and enqueueing after commit.

Jobs are enqueued only once the transaction that makes them meaningful has committed
(a job must never look for rows that are not there yet). If Redis is unreachable the
enqueue is logged and dropped: the truth is in PostgreSQL and the periodic reconcile
jobs pick up whatever was left undone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

QUEUES = ("filling", "notifications", "default")
_PENDING = "portal_after_commit"


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


def enqueue_after_commit(
    session: Session,
    func: Callable[..., Any],
    *args: Any,
    queue: str = "default",
    at: datetime | None = None,
    delay: timedelta | None = None,
    retry: Retry | None = None,
    job_id: str | None = None,
    job_timeout: int = 180,
) -> None:
    """Enqueue ``func(*args)`` once ``session`` commits; forget it if it rolls back."""
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    pending.append(
        {
            "func": func,
            "args": args,
            "queue": queue,
            "at": at,
            "delay": delay,
            "retry": retry,
            "job_id": job_id,
            "job_timeout": job_timeout,
            "app": current_app._get_current_object(),  # type: ignore[attr-defined]
        }
    )


def _enqueue_now(spec: dict[str, Any]) -> None:
    app = spec["app"]
    with app.app_context():
        try:
            q = get_queue(spec["queue"])
            options = {"retry": spec["retry"], "job_timeout": spec["job_timeout"]}
            if spec["job_id"]:
                options["job_id"] = spec["job_id"]
            if spec["at"] is not None:
                q.enqueue_at(spec["at"], spec["func"], *spec["args"], **options)
            elif spec["delay"] is not None:
                q.enqueue_in(spec["delay"], spec["func"], *spec["args"], **options)
            else:
                q.enqueue(spec["func"], *spec["args"], **options)
        except RedisError as exc:
            log.warning(
                "enqueue of %s failed (%s); the reconcile job will pick it up",
                getattr(spec["func"], "__name__", spec["func"]),
                type(exc).__name__,
            )


@sa.event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    for spec in pending or ():
        _enqueue_now(spec)


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)
