"""``GET /staff/``: today at every location, in each location's own time zone."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from portal.models.enums import SlotStatus
from portal.services import dayview
from portal.web.staff.blueprint import bp

#: The counts shown for each location, in this order.
SUMMARY_STATUSES = (SlotStatus.OPEN, SlotStatus.HELD, SlotStatus.BOOKED)


@bp.get("/")
def home() -> ResponseReturnValue:
    """Show today's slots per location and what needs a person's attention."""
    return render_template(
        "staff/home.html",
        days=dayview.today_at_locations(),
        attention=dayview.attention_counts(),
        summary_statuses=SUMMARY_STATUSES,
    )
