"""Forms for adding and editing a patient."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from portal.db import db
from portal.models import Location
from portal.services.patients import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH
from portal.services.phones import MAX_RAW_LENGTH


def _optional_id(value: Any) -> int | None:
    return int(value) if value not in (None, "", "None") and str(value).isdigit() else None


class PatientForm(FlaskForm):
    name = StringField(
        "Full name",
        validators=[DataRequired("Enter the patient's name."), Length(max=MAX_NAME_LENGTH)],
    )
    phone = TelField(
        "Mobile phone",
        validators=[DataRequired("Enter a phone number."), Length(max=MAX_RAW_LENGTH)],
        description="With the country code if not in the US, e.g. +44 20 7946 0958.",
    )
    email = EmailField("Email", validators=[Optional(), Length(max=MAX_EMAIL_LENGTH)])
    timezone = StringField(
        "Time zone",
        validators=[Optional(), Length(max=64)],
        description="Leave empty to take it from the phone number (else the clinic's).",
    )
    home_location_id = SelectField("Home clinic", coerce=_optional_id, validators=[Optional()])
    confirm_duplicate = BooleanField("Yes, this is a different person who shares the number")

    def fill_choices(self) -> None:
        locations = db.session.scalars(sa.select(Location).order_by(Location.name))
        self.home_location_id.choices = [(None, "None chosen")] + [
            (loc.id, loc.name) for loc in locations
        ]
