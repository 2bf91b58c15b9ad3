"""The demo practice loads and is usable."""

from __future__ import annotations

import sqlalchemy as sa
from flask.testing import FlaskCliRunner

from portal.db import db
from portal.models import Location, Slot, WaitlistEntry
from portal.models.enums import SlotStatus


def test_demo_loads_two_zones_with_open_and_booked_slots(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["demo", "--if-empty"])
    assert result.exit_code == 0, result.output
    zones = set(db.session.scalars(sa.select(Location.timezone)))
    assert zones == {"America/New_York", "America/Los_Angeles"}
    statuses = set(db.session.scalars(sa.select(Slot.status)))
    assert {SlotStatus.OPEN, SlotStatus.BOOKED} <= statuses
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WaitlistEntry)) >= 10
    again = runner.invoke(args=["demo", "--if-empty"])
    assert "already has data" in again.output
