"""The periodic jobs, run by ``portal cron`` (exactly one such process)."""

from __future__ import annotations

from rq.cron import CronScheduler

from jobs import filling, notify


def register_schedule(scheduler: CronScheduler) -> None:
    """Register every periodic job on ``scheduler``."""
    # Safety nets: they redo whatever an enqueue lost (e.g. Redis was down at commit).
    scheduler.register(filling.reconcile, "filling", interval=60, job_timeout=120)
    # It also escalates sends a dead worker left behind and receipts that never came.
    scheduler.register(notify.dispatch_due, "notifications", interval=30, job_timeout=120)
