"""The fill simulation: which offer policy fills more, proven on the portal's own code.

``run_simulation`` builds a synthetic clinic (``clinic``) into a scratch database on the
live server (``scratch``), copies it once per policy, replays the days on a virtual
clock (``engine``) with simulated patients (``behaviour``) and reads the figures back
(``figures``). The live database is never opened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_migrate import upgrade
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url

from portal.clock import ManualClock, use_clock
from portal.db import db
from portal.models import OfferPolicy
from portal.models.enums import OfferMode
from portal.queue import divert_jobs
from portal.simulation.clinic import SERVICES, START, build_clinic
from portal.simulation.engine import Simulation
from portal.simulation.figures import KEYS, compute, counts
from portal.simulation.scratch import refuse_live, scratch_server

POLICIES = ("broadcast", "sequential", "waves", "learned")
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@dataclass
class Result:
    """Figures per policy (``figures.KEYS``) and the releases they rest on."""

    seed: int
    days: int
    figures: dict[str, dict[str, Any]]
    releases: dict[str, int]
    job_errors: dict[str, int]


def _scratch_app(url: str, live_url: str) -> Flask:
    """An app on a scratch database: outbox backends only, no Redis, no providers."""
    from portal import create_app

    refuse_live(url, live_url)
    # Flask-Limiter keeps one storage for the process, replaced by every init_app: a
    # scratch app must leave the serving app's counters where they are (its own never count).
    storage = current_app.config["RATELIMIT_STORAGE_URI"] if has_app_context() else "memory://"
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": "",
            "RATELIMIT_STORAGE_URI": storage,
            "TWILIO_ACCOUNT_SID": "",
            "TWILIO_AUTH_TOKEN": "",
            "TWILIO_FROM_NUMBER": "",
            "SMTP_URL": "",
            "STRIPE_SECRET_KEY": "",
            "STRIPE_WEBHOOK_SECRET": "",
            "PUBLIC_BASE_URL": "http://sim.invalid",
        }
    )


def apply_policy(policy: str) -> None:
    """Offer every category's slots with ``policy`` (commits)."""
    mode = OfferMode(policy)
    for category in sorted({c for _, c, _, _ in SERVICES}):
        values = {"mode": mode, "wave_size": 3}
        db.session.execute(
            insert(OfferPolicy)
            .values(category=category, **values)
            .on_conflict_do_update(index_elements=[OfferPolicy.category], set_=values)
        )
    db.session.commit()


def run_simulation(
    live_url: str,
    *,
    days: int,
    seed: int,
    policies: tuple[str, ...] = POLICIES,
    progress: Callable[[str, float], None] | None = None,
    periodic_minutes: int = 60,
) -> Result:
    """Replay ``days`` days for each policy on copies of one synthetic clinic."""
    figures: dict[str, dict[str, Any]] = {}
    releases: dict[str, int] = {}
    errors: dict[str, int] = {}
    with scratch_server(live_url) as server:
        base_url = server.create("base")
        base = _scratch_app(base_url, live_url)
        with base.app_context():
            upgrade(directory=str(MIGRATIONS))
            # Jobs scheduled while building (reminders) are left to the periodic sweeps.
            with use_clock(ManualClock(START)), divert_jobs(lambda *job: None):
                plan = build_clinic(seed, days)
            db.session.remove()
            db.engine.dispose()
        for policy in policies:
            url = server.create(policy, template=make_url(base_url).database)
            app = _scratch_app(url, live_url)
            with app.app_context():
                apply_policy(policy)
                clock = ManualClock(plan.start)
                report = (lambda share, p=policy: progress(p, share)) if progress else None
                simulation = Simulation(
                    plan, clock, periodic_minutes=periodic_minutes, progress=report
                )
                with use_clock(clock), divert_jobs(simulation.sink):
                    tally = simulation.run()
                    measured = compute(tally, plan.start, plan.end)
                    figures[policy] = {key: measured[key] for key in KEYS}
                    releases[policy] = counts(tally, plan.start, plan.end)["releases"]
                    errors[policy] = tally.job_errors
                db.session.remove()
                db.engine.dispose()
    return Result(seed, days, figures, releases, errors)
