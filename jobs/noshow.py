"""The no-show sweep (queue ``filling``), every 5 minutes from ``portal cron``.

Each batch commits on its own; a batch that dies (a killed worker) rolls back whole and
the next sweep takes it again. ``portal sweep-no-shows`` runs the same function.
"""

from __future__ import annotations

import logging
from datetime import datetime

from jobs import job
from portal.db import db, now_utc
from portal.services import noshow

log = logging.getLogger(__name__)


@job
def sweep_no_shows(grace_minutes: int | None = None, now: datetime | None = None) -> dict:
    """Mark every due appointment a no-show, batch by batch; return a tally."""
    now = now or now_utc()
    tally = {"no_shows": 0, "freed_slots": 0, "restarted_slots": 0, "batches": 0}
    while True:
        batch = noshow.mark_due(now, grace_minutes=grace_minutes)
        db.session.commit()
        if not batch:
            break
        tally["batches"] += 1
        tally["no_shows"] += len(batch)
        tally["freed_slots"] += sum(1 for n in batch if n.freed_slot_id)
        tally["restarted_slots"] += sum(len(n.restarted_slot_ids) for n in batch)
    if tally["no_shows"]:
        log.info("no-show sweep: %s", tally)
    return tally
