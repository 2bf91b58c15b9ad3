"""The RQ worker: forks a work-horse per job, with a database pool of its own."""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, Worker, worker_registration

from portal.db import db
from portal.queue import JOBS, QUEUES, redis_connection
from portal.templating import compile_templates

log = logging.getLogger(__name__)

#: The template folders jobs render messages from (pages are the web's business).
MESSAGE_TEMPLATES = ("sms/", "emails/", "voice/")


class PortalWorker(Worker):
    """A forking worker whose work-horses never reuse the parent's DB connections."""

    #: Set when a stop signal (SIGTERM/SIGINT, or RQ's shutdown command) arrived, so the
    #: loop in ``run_worker`` can tell "asked to stop" from "Redis went away".
    stop_signalled: bool = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_signalled = True
        super().request_stop(signum, frame)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """Extend the registration, and register again if Redis forgot the worker.

        A Redis restarted empty while the worker kept its connection loop alive leaves
        a worker that works but that nothing lists (``portal doctor``, ``/healthz``): RQ
        registers only at birth, and its heartbeat recreates a bare hash outside the
        registry. The check costs one ``SISMEMBER`` per heartbeat; heartbeats sent in a
        pipeline (while a job runs) skip it, the one after the job makes it.
        """
        super().heartbeat(timeout, pipeline)
        if pipeline is None and not self.connection.sismember(self.redis_workers_keys, self.key):
            self.register_again(timeout)

    def register_again(self, timeout: int | None = None) -> None:
        """Write the worker's record and registry entries again (Redis lost them)."""
        log.warning("worker %s was not registered in Redis; registering again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, timeout or self.worker_ttl + 60)
            pipeline.execute()

    def perform_job(self, job: Any, queue: Queue) -> bool:
        # Runs in the forked child: sockets inherited from the parent must not be used.
        db.engine.dispose(close=False)
        return super().perform_job(job, queue)


def run_worker(app: Flask, *, burst: bool = False, with_scheduler: bool = True) -> None:
    """Work the portal's queues (``filling``, ``notifications``, ``default``) until stopped.

    RQ's worker exits when Redis goes away in the middle of a job; rather than let that
    stop ``make run`` (honcho ends everything when one process exits), start a new
    worker once Redis answers again. The jobs it lost are redone by the reconcile and
    dispatch sweeps, which read the truth from PostgreSQL.
    """
    with app.app_context():
        preload_jobs()
        connection = redis_connection()
        while True:
            queues = [Queue(name, connection=connection) for name in QUEUES]
            worker = PortalWorker(queues, connection=connection)
            try:
                worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
            except RedisConnectionError as exc:
                if burst:
                    raise
                log.warning("worker lost Redis (%s)", type(exc).__name__)
            # RQ does not say why work() returned: only a stop signal ends the process.
            # Anything else was Redis going away, even when it answers again already
            # (a fast restart): then a new worker starts at once.
            if burst or worker.stop_signalled:
                return
            log.warning("worker lost Redis; starting a new one once Redis answers")
            while not _redis_answers(connection):
                time.sleep(2.0)


def preload_jobs() -> None:
    """Import every registered job's module in the parent, before any fork.

    Each job runs in a forked work-horse; a module the parent never imported is imported
    again in every horse (the services, the message templates' code…), and every template
    compiled again, which cost most of the time from a release to its first text. Done
    once here, every fork inherits them.
    """
    for spec in JOBS.values():
        importlib.import_module(spec.path.rpartition(".")[0])
    # jobs render messages from these: compile them once
    compile_templates(current_app, MESSAGE_TEMPLATES)


def _redis_answers(connection: Redis) -> bool:
    try:
        connection.ping()
    except RedisConnectionError:
        return False
    return True
