"""``portal cron`` as a process: it rides out a Redis restart instead of exiting.

Found by the soak (bench/soak.py): when Redis went away, RQ's cron scheduler raised
and the process exited — under ``make run`` honcho then stops everything, and in a
deployment the periodic safety nets (``reconcile``, ``dispatch_due``) stop with it.
"""

from __future__ import annotations

import time
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.cron import CronScheduler

from tests.fakes.redis_server import PrivateRedis
from tests.jobs.processes import start_portal, stop, wait_for


def _scheduled(redis: PrivateRedis) -> bool:
    """A live cron scheduler is registered and its start-up run enqueued the sweeps."""
    connection = Redis.from_url(redis.url)
    try:
        return bool(CronScheduler.all(connection=connection)) and (
            Queue("sweeps", connection=connection).count > 0
        )
    except Exception:
        return False
    finally:
        connection.close()


def test_cron_survives_redis_restarting_empty(database_url: str, tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path).start()
    log = tmp_path / "cron.log"
    cron = start_portal("cron", database_url, redis, log)
    try:
        assert wait_for(lambda: _scheduled(redis), 30), log.read_text()[-2000:]
        redis.stop()  # every queued job and the scheduler's registration are gone
        time.sleep(3)
        assert cron.poll() is None, "cron exited while Redis was down:\n" + log.read_text()[-2000:]
        redis.start()
        assert wait_for(lambda: _scheduled(redis), 30), log.read_text()[-2000:]
        assert cron.poll() is None
    finally:
        stop(cron)
        redis.stop()


def test_the_safety_nets_never_wait_behind_a_backlog_of_sends() -> None:
    """Found by the soak: ``dispatch_due`` shared the notifications queue with the sends,
    so under a backlog the sweep that re-enqueues lost sends ran every few minutes, not
    every 30 s. Workers take queues in order: the sweeps' queue comes first."""
    from portal.queue import JOBS, QUEUES

    sweeps = {name: spec.queue for name, spec in JOBS.items() if spec.every and spec.every <= 60}
    assert set(sweeps) >= {"reconcile", "dispatch_due", "dispatch_reminders", "settle_payments"}
    assert set(sweeps.values()) == {QUEUES[0]}
    assert all(spec.queue != QUEUES[0] for spec in JOBS.values() if spec.every is None)
