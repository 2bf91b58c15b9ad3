"""``GET /staff/``: what to do next, then today at every location in its own time zone."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from portal.db import now_utc
from portal.models.enums import SlotStatus
from portal.services import dayview, outreach, today
from portal.web.staff.blueprint import bp

#: The counts shown for each location, in this order.
SUMMARY_STATUSES = (SlotStatus.OPEN, SlotStatus.HELD, SlotStatus.BOOKED)


@bp.get("/")
def home() -> ResponseReturnValue:
    """List the work due now (calls, open slots, flags, holds), then each location's day."""
    now = now_utc()
    return render_template(
        "staff/home.html",
        todo=today.today(now),
        now=now,
        clinic_zone=outreach.clinic_zone,
        days=dayview.today_at_locations(now),
        attention=dayview.attention_counts(),
        summary_statuses=SUMMARY_STATUSES,
    )
