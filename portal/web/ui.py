"""Jinja globals and filters shared by every template.

Times, durations and money are formatted by ``services.presentation`` (the same
functions SMS, e-mail, voice and calendar text use); this module only registers them.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from portal.services import presentation
from portal.services.matching import describe_exclusions
from portal.services.phones import display_phone

if TYPE_CHECKING:
    from flask import Flask

#: Labels that ``status.replace("_", " ").capitalize()`` would get wrong or make awkward.
STATUS_LABELS = {
    "no_show": "No-show",
    "checked_in": "Checked in",
    "in_progress": "In progress",
    "frequent_cancellations": "Frequent cancellations",
    "invalid_phone": "Invalid phone",
    "sms": "SMS",
}


def has_endpoint_in(app: Flask, name: str) -> bool:
    """Return whether ``app`` has a view registered under the endpoint ``name``."""
    return name in app.view_functions


def status_key(status: str | Enum | None) -> str:
    """Return the plain value of a status enum or string ("no_show")."""
    if status is None:
        return ""
    if isinstance(status, Enum):
        return str(status.value)
    return str(status)


def status_label(status: str | Enum | None) -> str:
    """Return a human label for a status value: ``no_show`` -> "No-show"."""
    key = status_key(status)
    if key in STATUS_LABELS:
        return STATUS_LABELS[key]
    return key.replace("_", " ").capitalize()


def init_app(app: Flask) -> None:
    """Register the template globals and filters on ``app``."""

    def has_endpoint(name: str) -> bool:
        return has_endpoint_in(app, name)

    app.jinja_env.globals.update(
        has_endpoint=has_endpoint,
        status_label=status_label,
        status_key=status_key,
    )
    # Every time, duration and amount a page shows is formatted by ``presentation``.
    app.jinja_env.filters.update(
        money=presentation.money,
        local_time=presentation.when,
        tz_abbrev=presentation.zone_abbrev,
        iso=presentation.iso,
        humanize_minutes=presentation.duration,
        relative=presentation.relative,
        phone=display_phone,
        nobody_left=describe_exclusions,
    )
