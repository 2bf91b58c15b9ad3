"""The public front door: ``/`` for whoever types the bare address, and the favicon.

Patients never need ``/`` (their links go straight to their offer), so the page says
so, lists the clinic's locations and numbers, and leads staff to sign in. Signed-in
staff go straight to their day.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, send_from_directory, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal.db import db
from portal.models import Location

bp = Blueprint("public", __name__)

#: The front page lists at most this many locations.
LOCATIONS_SHOWN = 20


@bp.get("/")
def home() -> ResponseReturnValue:
    """Show the clinic's front page, or the staff day for a signed-in member of staff."""
    if current_user.is_authenticated:
        return redirect(url_for("staff.home"))
    locations = db.session.scalars(
        sa.select(Location).order_by(Location.name, Location.id).limit(LOCATIONS_SHOWN)
    ).all()
    return render_template("public/home.html", locations=locations)


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """The icon browsers ask for at the root whatever the page links."""
    return send_from_directory(
        Path(current_app.static_folder or "static"),
        "favicon.ico",
        mimetype="image/vnd.microsoft.icon",
        max_age=7 * 24 * 3600,
    )
