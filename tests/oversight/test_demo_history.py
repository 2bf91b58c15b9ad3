"""The demo's six weeks of history: within the demo's rules, and a dashboard with a story."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import aliased

from jobs.filling import reconcile
from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Notification, Offer, Slot
from portal.models.enums import INACTIVE_APPOINTMENT_STATUSES, AppointmentStatus
from portal.services import analytics, demo

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture(scope="module")
def figures_and_checks(app):
    """Load once for the module (it is the slowest fixture here); clean up after."""
    from tests.conftest import _truncate_all

    with app.app_context():
        counts = demo.load_demo()
        db.session.commit()
        started = now_utc()
        tally = reconcile()
        db.session.commit()
        today = now_utc().date()
        figures = analytics.figures(today - timedelta(days=42), today)
        first, second = aliased(Appointment), aliased(Appointment)
        s1, s2 = aliased(Slot), aliased(Slot)
        clashes = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(first)
            .join(second, sa.and_(second.patient_id == first.patient_id, second.id > first.id))
            .join(s1, s1.id == first.slot_id)
            .join(s2, s2.id == second.slot_id)
            .where(
                first.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
                second.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
                s1.start_at < s2.end_at,
                s2.start_at < s1.end_at,
            )
        )
        no_shows_per_patient = db.session.scalar(
            sa.select(sa.func.max(sa.func.count()).over())
            .where(Appointment.status == AppointmentStatus.NO_SHOW)
            .group_by(Appointment.patient_id)
            .limit(1)
        )
        new_offers = db.session.scalar(
            sa.select(sa.func.count()).select_from(Offer).where(Offer.created_at >= started)
        )
        new_messages = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.created_at >= started)
        )
        past_events = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.occurred_at < started - timedelta(days=7))
        )
        yield {
            "counts": counts,
            "tally": tally,
            "figures": figures,
            "clashes": clashes,
            "no_shows_per_patient": no_shows_per_patient,
            "new_offers": new_offers,
            "new_messages": new_messages,
            "past_events": past_events,
        }
        db.session.remove()
        _truncate_all()


def test_history_keeps_the_demo_rules_and_queues_nothing(figures_and_checks) -> None:
    got = figures_and_checks
    assert got["counts"]["history: releases"] > 50
    assert got["clashes"] == 0
    assert got["no_shows_per_patient"] == 1  # nobody needs a deposit to book
    assert got["new_offers"] == 0 and got["new_messages"] == 0
    assert got["tally"]["advanced"] == 0
    assert got["past_events"] > 1000  # the audit log has weeks to browse


def test_the_dashboard_tells_a_story(figures_and_checks) -> None:
    f = figures_and_checks["figures"]
    assert f.released > 50 and 0 < f.filled < f.released
    assert all(f.filled_by[source] > 0 for source in ("waitlist", "alternative", "staff"))
    # Past weeks only: the days ahead's open slots were released two days ago (the demo's
    # offer history), and are still filling.
    ahead = (now_utc() - timedelta(days=2)).date()
    ahead_week = ahead - timedelta(days=ahead.weekday())
    full = [w for w in f.weeks if w["released"] >= 10 and w["week"] < ahead_week]
    assert len(full) >= 4
    # Fills climb over the six weeks (compare the halves).
    half = len(full) // 2
    early = sum(w["filled"] for w in full[:half]) / sum(w["released"] for w in full[:half])
    late = sum(w["filled"] for w in full[half:]) / sum(w["released"] for w in full[half:])
    assert late > early, [(w["week"], w["released"], w["filled"]) for w in full]
    channels = {r["channel"] for r in f.acceptance["by_channel"]}
    assert {"sms", "email", "voice", "manual"} <= channels
    assert {r["mode"] for r in f.acceptance["by_mode"]} >= {"sequential", "waves", "broadcast"}
    assert len(f.acceptance["by_wave"]) >= 2
    assert [d["depth"] for d in f.fallback_depth][:4] == [1, 2, 3, 4]
    assert f.fees["charged_cents"] > f.fees["collected_cents"] > 0 and f.fees["waived_cents"] > 0
    assert sum(w["no_shows"] for w in f.weeks) > 5
    assert sum(w["late_cancellations"] for w in f.weeks) > 5
