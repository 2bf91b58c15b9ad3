"""Reminder tests run with the practice's real quiet hours (08:00-21:00)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from portal.db import db
from portal.services.settings import set_setting
from tests.notify.conftest import providers  # noqa: F401 (fixture)
from tests.staff.conftest import signed_in, staff  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _real_quiet_hours(request: pytest.FixtureRequest) -> None:
    if "app" in request.fixturenames:
        set_setting("quiet_hours", {"start": "21:00", "end": "08:00"})
        db.session.commit()


@pytest.fixture
def app_ctx(app: Flask) -> Flask:
    return app


def at(tz: str, *fields: int, fold: int = 0) -> datetime:
    """A wall-clock time in ``tz`` as an aware instant (``fold=1``: the repeated hour)."""
    return datetime(*fields, tzinfo=ZoneInfo(tz), fold=fold)
