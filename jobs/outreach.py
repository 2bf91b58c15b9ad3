"""Outreach jobs (queue ``default``): tasks about offers that ended close themselves."""

from __future__ import annotations

from jobs import job
from portal.db import db
from portal.services import outreach


@job
def close_ended_outreach() -> int:
    """Close open outreach tasks whose offer can no longer be answered."""
    closed = outreach.close_ended_tasks()
    db.session.commit()
    return closed
