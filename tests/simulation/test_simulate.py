"""The fill simulation: calibrated, deterministic, and never near the live database."""

from __future__ import annotations

import json
import os

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from portal.commands.simulate import simulate_command
from portal.db import db
from portal.engines.postgres import _psycopg_kwargs
from portal.models import Offer, Patient, Slot
from portal.simulation import run_simulation
from portal.simulation.figures import KEYS
from portal.simulation.scratch import PREFIX, LiveDatabaseRefused, refuse_live


def _scratch_databases(url: str) -> list[str]:
    """This process's scratch databases (others may be simulating on the same server)."""
    with psycopg.connect(**_psycopg_kwargs(url, "postgres"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"{PREFIX}{os.getpid()}\\_%",),
        ).fetchall()
    return [name for (name,) in rows]


@pytest.fixture(scope="module")
def calibration(app: Flask):
    """One short broadcast-and-learned run shared by the checks below."""
    with app.app_context():
        return run_simulation(
            app.config["SQLALCHEMY_DATABASE_URI"],
            days=5,
            seed=1,
            policies=("broadcast", "learned"),
        )


def test_a_fast_pass_like_policy_stays_in_its_published_band(calibration) -> None:
    """Broadcast ≈ Epic Fast Pass: ~11% of offers accepted, ~30% of open slots filled."""
    broadcast = calibration.figures["broadcast"]
    assert calibration.releases["broadcast"] >= 15
    assert 0.06 <= broadcast["acceptance_per_offer"] <= 0.16
    assert 0.18 <= broadcast["fill_rate"] <= 0.5
    assert calibration.job_errors == {"broadcast": 0, "learned": 0}


def test_every_policy_reports_every_figure(calibration) -> None:
    for figures in calibration.figures.values():
        assert tuple(figures) == KEYS
    assert calibration.figures["learned"]["max_messages_per_patient_week"] <= 3


def test_the_same_seed_gives_the_same_figures(app: Flask) -> None:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    first = run_simulation(url, days=2, seed=7, policies=("waves",))
    again = run_simulation(url, days=2, seed=7, policies=("waves",))
    assert first.figures == again.figures
    assert first.releases == again.releases


def test_simulate_never_touches_the_live_database(app: Flask, runner) -> None:
    live = app.config["SQLALCHEMY_DATABASE_URI"]
    tables = (Patient, Slot, Offer)

    def counts() -> list[int]:
        return [db.session.scalar(sa.select(sa.func.count()).select_from(t)) for t in tables]

    before = counts()
    db.session.commit()
    result = runner.invoke(
        simulate_command, ["--days", "1", "--seed", "3", "--policies", "broadcast", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert list(figures) == ["broadcast"]
    assert tuple(figures["broadcast"]) == KEYS
    assert counts() == before
    assert _scratch_databases(live) == []


def test_a_scratch_url_naming_the_live_database_is_refused(app: Flask) -> None:
    live = app.config["SQLALCHEMY_DATABASE_URI"]
    with pytest.raises(LiveDatabaseRefused):
        refuse_live(live, live)
    with pytest.raises(LiveDatabaseRefused):
        refuse_live(live.rsplit("/", 1)[0] + "/portal", live)


def test_unknown_policies_are_refused_before_anything_is_built(runner) -> None:
    result = runner.invoke(simulate_command, ["--days", "1", "--policies", "firehose"])
    assert result.exit_code == 2
    assert "choose from broadcast, sequential, waves, learned" in result.output


def test_a_scratch_app_leaves_the_rate_limit_counters_in_redis(app: Flask) -> None:
    """Flask-Limiter has one storage per process; a scratch app swapped it for memory."""
    from portal.extensions import limiter
    from portal.simulation import _scratch_app

    live = app.config["SQLALCHEMY_DATABASE_URI"]
    scratch = (
        make_url(live)
        .set(database=f"{PREFIX}{os.getpid()}_limiter")
        .render_as_string(hide_password=False)
    )
    _scratch_app(scratch, live)
    assert type(limiter.storage).__name__ == "RedisStorage"
