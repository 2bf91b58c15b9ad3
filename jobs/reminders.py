"""Reminder jobs (queue ``notifications``): one at each reminder's time, and the sweep.

``send_reminder`` is enqueued for each reminder's due time; ``dispatch_reminders``
runs every minute from ``portal cron`` and sends whatever is due, so a lost job (an
emptied Redis, a killed worker) delays a reminder by a minute at most, never loses it.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from jobs import job
from portal.db import db, now_utc
from portal.services import reminders

log = logging.getLogger(__name__)


@job
def send_reminder(reminder_id: int) -> str:
    """Send one reminder if it is still scheduled and due."""
    outcome = reminders.send_reminder(reminder_id)
    db.session.commit()
    return outcome


@job
def dispatch_reminders(now: datetime | None = None) -> dict[str, int]:
    """Send every reminder that is due (one transaction each)."""
    now = now or now_utc()
    tally: Counter[str] = Counter()
    for reminder_id in reminders.due_reminder_ids(now):
        tally[reminders.send_reminder(reminder_id, now)] += 1
        db.session.commit()
    if tally:
        log.info("reminder dispatch: %s", dict(tally))
    return dict(tally)
