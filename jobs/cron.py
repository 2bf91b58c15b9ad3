"""The periodic jobs, run by ``portal cron`` (exactly one such process)."""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import time

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

from portal.queue import JOBS, redis_connection

log = logging.getLogger(__name__)


def register_schedule(scheduler: CronScheduler) -> None:
    """Register every periodic job of the registry (``every`` seconds) on ``scheduler``.

    ``reconcile`` and ``dispatch_due`` are the safety nets: they redo whatever an enqueue
    lost (Redis down at commit), escalate sends a dead worker left behind and receipts
    that never came, and repair any slot that disagrees with its bookings.
    """
    for spec in JOBS.values():
        if spec.every is None:
            continue
        module, _, name = spec.path.rpartition(".")
        func = getattr(importlib.import_module(module), name)
        scheduler.register(func, spec.queue, interval=spec.every, job_timeout=spec.timeout)


def run_cron(app: Flask) -> None:
    """Run RQ's cron scheduler until asked to stop, riding out Redis going away.

    RQ's scheduler raises when Redis disappears; exiting would stop the sweeps that
    redo what the outage lost (and, under ``make run``, honcho would stop everything).
    Instead a new scheduler starts once Redis answers again: interval jobs fire at
    start-up, so ``reconcile`` and ``dispatch_due`` run at once on the emptied Redis.
    """
    with app.app_context():
        connection = redis_connection()
        for generation in itertools.count(1):
            scheduler = CronScheduler(
                connection=connection, name=f"portal-cron-{os.getpid()}-{generation}"
            )
            register_schedule(scheduler)
            try:
                scheduler.start()
                return  # a stop signal or Ctrl-C
            except RedisError as exc:
                log.warning("cron lost Redis (%s); restarting once it answers", type(exc).__name__)
            try:
                while not _redis_answers(connection):
                    time.sleep(2.0)
            except StopRequested:  # the scheduler's signal handlers are still installed
                return


def _redis_answers(connection: Redis) -> bool:
    try:
        connection.ping()
    except RedisError:
        return False
    return True
