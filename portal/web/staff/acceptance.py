"""``/staff/analytics/acceptance``: is the learned acceptance estimate honest?"""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from portal.db import now_utc
from portal.services.acceptance_calibration import MIN_OFFERS, calibration
from portal.web.staff.blueprint import bp


@bp.get("/analytics/acceptance")
def analytics_acceptance() -> ResponseReturnValue:
    """Predicted against observed acceptance by decile of the estimate."""
    return render_template(
        "staff/analytics_acceptance.html", result=calibration(now_utc()), minimum=MIN_OFFERS
    )
