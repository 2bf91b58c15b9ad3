"""The RQ worker: forks a work-horse per job, with a database pool of its own."""

from __future__ import annotations

from typing import Any

from flask import Flask
from rq import Queue, Worker

from portal.db import db
from portal.queue import QUEUES, redis_connection


class PortalWorker(Worker):
    """A forking worker whose work-horses never reuse the parent's DB connections."""

    def perform_job(self, job: Any, queue: Queue) -> bool:
        # Runs in the forked child: sockets inherited from the parent must not be used.
        db.engine.dispose(close=False)
        return super().perform_job(job, queue)


def run_worker(app: Flask, *, burst: bool = False, with_scheduler: bool = True) -> None:
    """Work the portal's queues (``filling``, ``notifications``, ``default``) until stopped."""
    with app.app_context():
        connection = redis_connection()
        queues = [Queue(name, connection=connection) for name in QUEUES]
        worker = PortalWorker(queues, connection=connection)
        worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
