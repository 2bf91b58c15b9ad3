"""The waitlist entry form: what the patient wants, and their weekly availability.

The availability editor is plain inputs — two time ranges per weekday, in the
patient's own zone — so it works without JavaScript; ``windows_from`` reads them back
into the ``[{weekday, start, end}]`` list the waitlist stores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectField, TimeField
from wtforms.validators import NumberRange, Optional

from portal.db import db
from portal.models import Location, Practitioner, Service
from portal.services.waitlist import MAX_PRIORITY

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
RANGES_PER_DAY = 2
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def _optional_id(value: Any) -> int | None:
    return int(value) if value not in (None, "", "None") and str(value).isdigit() else None


class EntryForm(FlaskForm):
    """Service and location (new entries only), then the preferences."""

    service_id = SelectField("Service", coerce=_optional_id)
    location_id = SelectField("Location", coerce=_optional_id)
    preferred_practitioner_id = SelectField(
        "Preferred practitioner", coerce=_optional_id, validators=[Optional()]
    )
    earliest = DateField("Earliest date", validators=[Optional()])
    latest = DateField("Latest date", validators=[Optional()])
    preferred_time = TimeField(
        "Preferred time of day", validators=[Optional()], description="In the patient's zone."
    )
    short_notice_ok = BooleanField("Can come at short notice (same day)")
    priority = IntegerField(
        "Staff priority",
        default=0,
        validators=[Optional(), NumberRange(-MAX_PRIORITY, MAX_PRIORITY)],
        description="0 is normal; each step up adds 10 points to their ranking.",
    )

    def fill_choices(self) -> None:
        services = db.session.scalars(
            sa.select(Service).where(Service.active.is_(True)).order_by(Service.name)
        )
        self.service_id.choices = [(None, "Choose a service")] + [(s.id, s.name) for s in services]
        locations = db.session.scalars(sa.select(Location).order_by(Location.name))
        self.location_id.choices = [(None, "Choose a location")] + [
            (loc.id, loc.name) for loc in locations
        ]
        practitioners = db.session.scalars(
            sa.select(Practitioner)
            .where(Practitioner.active.is_(True))
            .join(Location)
            .order_by(Location.name, Practitioner.name)
        )
        self.preferred_practitioner_id.choices = [(None, "Anyone")] + [
            (p.id, f"{p.name} · {p.location.name}") for p in practitioners
        ]


class WindowsError(ValueError):
    """The availability rows do not make sense; the message says which."""


def windows_from(form: Mapping[str, str]) -> list[dict[str, Any]]:
    """Read ``w<day>_<n>_start``/``_end`` pairs (blank = not available) as weekly windows."""
    windows = []
    for day, name in enumerate(WEEKDAYS):
        for n in range(RANGES_PER_DAY):
            start = form.get(f"w{day}_{n}_start", "").strip()
            end = form.get(f"w{day}_{n}_end", "").strip()
            if not start and not end:
                continue
            if not (_HHMM.fullmatch(start) and _HHMM.fullmatch(end)):
                raise WindowsError(f"{name}: give both a from and a to time (HH:MM).")
            if start >= end:
                raise WindowsError(f"{name}: the time range must end after it starts.")
            windows.append({"weekday": day, "start": start, "end": end})
    return windows


def window_rows(windows: list[dict[str, Any]]) -> list[tuple[int, str, list[dict[str, str]]]]:
    """The editor's rows: (weekday, name, [{start, end}] × RANGES_PER_DAY) from stored windows."""
    rows = []
    for day, name in enumerate(WEEKDAYS):
        ranges = [w for w in windows if w["weekday"] == day][:RANGES_PER_DAY]
        cells = [{"start": r["start"], "end": r["end"]} for r in ranges]
        cells += [{"start": "", "end": ""}] * (RANGES_PER_DAY - len(cells))
        rows.append((day, name, cells))
    return rows
