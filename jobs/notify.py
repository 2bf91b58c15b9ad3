"""Notification jobs (queue ``notifications``)."""

from __future__ import annotations

from jobs import job
from portal.db import now_utc
from portal.services.notify import sending


@job
def send_attempt(attempt_id: int) -> str | None:
    """Send one notification attempt if it is still queued and due."""
    status = sending.send_attempt(attempt_id)
    return status.value if status else None


@job
def dispatch_due() -> int:
    """Send every due attempt whose job never ran (lost enqueue, Redis outage)."""
    sent = 0
    for attempt_id in sending.due_attempt_ids(now_utc()):
        if sending.send_attempt(attempt_id) is not None:
            sent += 1
    return sent
