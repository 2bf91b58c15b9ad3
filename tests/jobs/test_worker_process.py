"""``portal worker`` as a process: a fast Redis restart does not end it; a stop signal does.

Found by the soak (bench/soak.py): the worker took "Redis answers again" after losing it
for "asked to stop" and exited (code 0), so after a quick Redis restart a deployment
was left with one worker fewer.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq import Queue, Worker
from rq.job import JobStatus

import jobs.worker as worker_module
from jobs.worker import PortalWorker, run_worker
from tests.fakes.redis_server import PrivateRedis
from tests.jobs.processes import start_portal, stop, wait_for


def _registered(redis: PrivateRedis) -> bool:
    connection = Redis.from_url(redis.url)
    try:
        return bool(Worker.all(connection=connection))
    except Exception:
        return False
    finally:
        connection.close()


def _works(redis: PrivateRedis) -> bool:
    """A job enqueued now is done by the worker (a harmless stdlib call)."""
    connection = Redis.from_url(redis.url)
    try:
        job = Queue("default", connection=connection).enqueue("os.getpid")
        return wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, 60)
    finally:
        connection.close()


def test_worker_rides_out_a_fast_redis_restart_and_stops_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path).start()
    log = tmp_path / "worker.log"
    worker = start_portal("worker", database_url, redis, log)
    try:
        assert wait_for(lambda: _registered(redis), 60), log.read_text()[-2000:]
        redis.stop()
        redis.start()  # back at once, and empty
        time.sleep(8)  # the old code exited here, with code 0, as if asked to stop
        assert worker.poll() is None, log.read_text()[-2000:]
        assert _works(redis), "no job ran after the restart:\n" + log.read_text()[-2000:]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        stop(worker)
        redis.stop()


def test_only_a_stop_signal_ends_the_worker_loop(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """work() returning while Redis answers (it came back fast) starts a new worker."""
    calls: list[str] = []

    def work(self: PortalWorker, **_: object) -> bool:
        calls.append(self.name)
        if len(calls) == 2:  # the second worker gets SIGTERM
            self.stop_signalled = True
        return True  # the first returns as RQ's does after losing Redis

    monkeypatch.setattr(PortalWorker, "work", work)
    monkeypatch.setattr(worker_module, "preload_jobs", lambda: None)
    run_worker(app, burst=False, with_scheduler=False)
    assert len(calls) == 2 and calls[0] != calls[1]


def _registered_for_queues(redis: PrivateRedis) -> list[str]:
    """The queues of every registered worker, as ``portal doctor`` would see them."""
    connection = Redis.from_url(redis.url)
    try:
        return sorted(q for w in Worker.all(connection=connection) for q in w.queue_names())
    except Exception:
        return []
    finally:
        connection.close()


def test_a_running_worker_registers_again_after_redis_comes_back_empty(
    database_url: str, tmp_path: Path
) -> None:
    """Found by the soak: the worker kept working after a quick restart of an empty
    Redis but was no longer in RQ's registry, so doctor and /healthz said "no worker"."""
    redis = PrivateRedis(tmp_path).start()
    log = tmp_path / "worker.log"
    worker = start_portal("worker", database_url, redis, log)
    try:
        assert wait_for(lambda: _registered(redis), 60), log.read_text()[-2000:]
        before = _registered_for_queues(redis)
        redis.stop()
        redis.start()  # back at once, and empty
        assert _works(redis), "no job ran after the restart:\n" + log.read_text()[-2000:]
        assert wait_for(lambda: _registered_for_queues(redis) == before, 30), (
            "not registered again:\n" + log.read_text()[-2000:]
        )
        assert worker.poll() is None
    finally:
        stop(worker)
        redis.stop()
