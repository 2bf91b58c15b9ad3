"""``/staff/analytics``: whether the portal earns its keep, as charts with their tables.

The figures come from ``services/analytics`` (the same as ``GET /api/v1/analytics``);
this module only reads the filter and turns the figures into charts.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import render_template, request
from flask.typing import ResponseReturnValue

from portal.db import db
from portal.models import Location
from portal.services import analytics
from portal.services.audit_log import parse_day
from portal.services.errors import DomainError
from portal.web.ids import parse_id
from portal.web.staff import charts
from portal.web.staff.blueprint import bp

CHANNELS = {
    "sms": "Text",
    "email": "Email",
    "voice": "Voice call",
    "manual": "Phoned by staff",
    "none": "Not sent",
}
MODES = {
    "sequential": "One at a time",
    "waves": "Waves",
    "broadcast": "Broadcast",
    "learned": "Learned waves",
    "manual": "Offered by staff",
}
SOURCES = {
    "waitlist": "Waitlist offer",
    "alternative": "Alternative",
    "staff": "Staff",
    "api": "Practice system",
}


def _day(raw: str | None, problems: list[str], label: str) -> date | None:
    problem = f"{label} must be a date like 2026-11-30; the default range is shown."
    return parse_day(raw, problems, problem)


@bp.get("/analytics", endpoint="analytics")
def analytics_dashboard() -> ResponseReturnValue:
    """Fills, offers, messages, attendance and money for a range of local days."""
    problems: list[str] = []
    locations = list(db.session.scalars(sa.select(Location).order_by(Location.id)))
    raw_location = request.args.get("location", "")
    location_id = parse_id(raw_location)
    if (raw_location and location_id is None) or (
        location_id is not None and location_id not in {loc.id for loc in locations}
    ):
        problems.append("No such location; showing all.")
        location_id = None
    wanted_from = _day(request.args.get("from"), problems, "From")
    wanted_to = _day(request.args.get("to"), problems, "To")
    try:
        date_from, date_to = analytics.resolve_range(wanted_from, wanted_to, location_id)
    except DomainError as exc:
        problems.append(f"{exc.message} The default range is shown.")
        date_from, date_to = analytics.resolve_range(None, None, location_id)
    figures = analytics.figures(date_from, date_to, location_id)
    return render_template(
        "staff/analytics.html",
        f=figures,
        charts=_charts(figures),
        locations=locations,
        location_id=location_id,
        problems=problems,
        channels=CHANNELS,
        modes=MODES,
        sources=SOURCES,
        week_label=_week_label,
    )


def _week_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def _charts(f: analytics.Figures) -> dict[str, Any]:
    weeks = [_week_label(w["week"]) for w in f.weeks]
    acc = f.acceptance
    out: dict[str, Any] = {}
    if f.weeks:
        out["fills"] = charts.weekly_lines(
            weeks,
            {
                # Releases still ahead may yet fill: the line counts the settled ones.
                "Released (settled)": [
                    w["released"] - w["still_open"] if w["released"] else None for w in f.weeks
                ],
                "Filled": [w["filled"] if w["released"] else None for w in f.weeks],
            },
            "Settled releases and fills per week; the table below lists the numbers,"
            " with the releases still open.",
        )
        out["attendance"] = charts.weekly_lines(
            weeks,
            {
                "No-show rate": [w["no_show_rate"] for w in f.weeks],
                "Late-cancellation rate": [w["late_cancellation_rate"] for w in f.weeks],
            },
            "No-show and late-cancellation rates per week; the table below lists them.",
            percent=True,
        )
        out["messages"] = charts.weekly_lines(
            weeks,
            {"Messages per patient": [w["messages_per_patient"] for w in f.weeks]},  # None: none
            "Messages per messaged patient per week; the table below lists them.",
        )
    if acc["by_channel"]:
        out["channel"] = charts.bars(
            [CHANNELS.get(r["channel"], r["channel"]) for r in acc["by_channel"]],
            {"Accepted": [r["rate"] for r in acc["by_channel"]]},
            "Share of answered offers accepted, by channel; the table below lists them.",
            percent=True,
        )
        out["wave"] = charts.bars(
            [f"Wave {r['wave']}{'+' if r['wave'] >= 4 else ''}" for r in acc["by_wave"]],
            {"Accepted": [r["rate"] for r in acc["by_wave"]]},
            "Share of answered offers accepted, by wave; the table below lists them.",
            percent=True,
        )
        out["mode"] = charts.bars(
            [MODES.get(r["mode"], r["mode"]) for r in acc["by_mode"]],
            {"Accepted": [r["rate"] for r in acc["by_mode"]]},
            "Share of answered offers accepted, by offer mode; the table below lists them.",
            percent=True,
        )
    if f.delivery:
        out["delivery"] = charts.bars(
            [CHANNELS.get(r["channel"], r["channel"]) for r in f.delivery],
            {"Delivered": [r["rate"] for r in f.delivery]},
            "Share of finished attempts delivered, by channel; the table below lists them.",
            percent=True,
        )
    if f.fallback_depth:
        out["depth"] = charts.bars(
            [f"{r['depth']} channel{'s' if r['depth'] != 1 else ''}" for r in f.fallback_depth],
            {
                "Messages": [r["messages"] for r in f.fallback_depth],
                "Delivered": [r["delivered"] for r in f.fallback_depth],
            },
            "Messages by how many channels they went through; the table below lists them.",
        )
    return out
