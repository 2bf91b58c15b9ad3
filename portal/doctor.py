"""What a deployment needs to work, checked one by one and said in plain words.

``portal doctor`` prints these checks; ``GET /healthz`` reports the processes' liveness.
Each check returns a ``Check``: ``ok`` or not, and a sentence a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from redis.exceptions import RedisError
from rq import Worker
from rq.cron import CronScheduler

from portal.clock import now_utc
from portal.db import db
from portal.queue import QUEUES, get_queue, redis_connection
from portal.services.notify.providers import smtp_configured, twilio_configured

#: A cron scheduler heartbeats every loop (a minute at most); older means it is gone.
CRON_STALE = timedelta(minutes=3)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    warning: bool = False  # ok, but worth a look


def _age(moment: datetime | None, now: datetime) -> timedelta | None:
    if moment is None:
        return None
    return now - (moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def worker_check(now: datetime | None = None) -> Check:
    """At least one RQ worker is registered (RQ drops a worker whose heartbeat lapsed)."""
    now = now or now_utc()
    try:
        workers = Worker.all(connection=redis_connection())
    except RedisError as exc:
        return Check("worker", False, f"cannot ask Redis about workers ({type(exc).__name__})")
    if not workers:
        return Check("worker", False, "no RQ worker is running: start `portal worker`")
    backlog = sum(get_queue(name).count for name in QUEUES)
    message = f"{len(workers)} worker(s) alive; {backlog} job(s) waiting"
    return Check("worker", True, message, warning=backlog > 1000)


def cron_check(now: datetime | None = None) -> Check:
    """Exactly one ``portal cron`` process is alive (more would only repeat the sweeps)."""
    now = now or now_utc()
    try:
        schedulers = CronScheduler.all(connection=redis_connection())
    except RedisError as exc:
        return Check("cron", False, f"cannot ask Redis about cron ({type(exc).__name__})")
    alive = [s for s in schedulers if (age := _age(s.last_heartbeat, now)) and age < CRON_STALE]
    if not alive:
        return Check("cron", False, "no `portal cron` process is running: periodic jobs are not")
    if len(alive) > 1:
        return Check("cron", True, f"{len(alive)} cron processes: run exactly one", warning=True)
    return Check("cron", True, "one cron process alive")


def database_check() -> Check:
    """The database answers and carries the newest migration."""
    try:
        with db.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except sa.exc.SQLAlchemyError as exc:
        return Check("database", False, f"unreachable ({type(exc).__name__}); check DATABASE_URL")
    directory = Path(current_app.root_path).parent / "migrations"
    head = ScriptDirectory(str(directory)).get_current_head()
    if current != head:
        return Check(
            "database", False, f"at migration {current}, newest is {head}: run `portal db upgrade`"
        )
    return Check("database", True, f"reachable, migrated ({head})")


def redis_check() -> Check:
    try:
        redis_connection().ping()
    except RedisError as exc:
        return Check("redis", False, f"unreachable ({type(exc).__name__}); check REDIS_URL")
    return Check("redis", True, "reachable")


def providers_check(app: Flask) -> list[Check]:
    """Which channels really send, and which go to the outbox (fine only in development)."""
    production = app.config.get("PORTAL_ENV") == "production"
    checks = []
    for name, configured in (("twilio", twilio_configured()), ("smtp", smtp_configured())):
        if configured:
            checks.append(Check(name, True, "configured"))
        else:
            message = "not configured: messages go to the outbox (/staff/outbox)"
            checks.append(Check(name, not production, message, warning=True))
    return checks


def public_url_check(app: Flask) -> Check:
    url = app.config.get("PUBLIC_BASE_URL") or ""
    if app.config.get("PORTAL_ENV") == "production" and not url.startswith("https://"):
        return Check("public url", False, f"{url or '(unset)'} must be https:// in production")
    return Check("public url", True, url)


def run_checks(app: Flask) -> list[Check]:
    """Every check, in the order a person would fix them."""
    steps: list[Callable[[], Check | list[Check]]] = [
        lambda: public_url_check(app),
        database_check,
        redis_check,
        worker_check,
        cron_check,
        lambda: providers_check(app),
    ]
    checks: list[Check] = []
    for step in steps:
        result = step()
        checks.extend(result if isinstance(result, list) else [result])
    return checks
