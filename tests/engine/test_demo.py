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


def test_make_runs_path_migrate_a_fresh_database_then_load_the_demo(
    engine_urls: tuple[str, str], app_config: dict[str, object]
) -> None:
    """What `make run` does on a new machine: the migrations seed data of their own
    (cancellation policies), and the demo must load on top of exactly that."""
    import os
    import subprocess
    import sys

    from portal.engines import create_fresh_database, drop_database

    name = f"portal_fresh_{os.getpid()}"
    url = create_fresh_database(engine_urls[0], name)
    env = os.environ | {
        "DATABASE_URL": url,
        "REDIS_URL": str(app_config["REDIS_URL"]),
        "SECRET_KEY": "fresh-machine-secret-key-long-enough-0123456789",
    }
    try:
        for args in (["db", "upgrade"], ["demo", "--if-empty"]):
            done = subprocess.run(
                [sys.executable, "-m", "portal.cli", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        assert "Demo loaded" in done.stdout
    finally:
        drop_database(engine_urls[0], name)
