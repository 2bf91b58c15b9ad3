"""The periodic jobs, run by ``portal cron`` (exactly one such process)."""

from __future__ import annotations

import importlib

from rq.cron import CronScheduler

from portal.queue import JOBS


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
