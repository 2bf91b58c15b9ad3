"""The demo practice as ``make run`` leaves it: today's offer caps unspent, releases fill.

``make run`` loads the demo and starts the cron process, whose ``reconcile`` runs at
once. The demo's unbooked slots must not send a wave then: each one spent waiting
patients' daily offer caps, so the first slot a visitor released found nobody.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from jobs.filling import reconcile
from portal.db import db, now_utc
from portal.models import Notification, Offer, Slot
from portal.models.enums import SlotStatus
from portal.services import demo
from portal.services.audit import SYSTEM
from portal.services.filling import advance
from portal.services.matching import match_slot
from portal.services.release import release_slot
from tests.staff.conftest import signed_in, staff  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def loaded() -> dict[str, int]:
    counts = demo.load_demo(history=False)  # the past: tests/oversight/test_demo_history.py
    db.session.commit()
    return counts


def _offers_made_since(moment: datetime) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Offer).where(Offer.created_at >= moment)
    )


def test_the_first_reconcile_after_loading_sends_no_offers(loaded: dict[str, int]) -> None:
    started = now_utc()

    tally = reconcile()

    assert tally["advanced"] == 0 and tally["reopened"] == 0
    assert _offers_made_since(started - timedelta(hours=1)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0


def test_the_unbooked_slots_were_offered_before_and_say_why_nobody_is_left(
    loaded: dict[str, int],
) -> None:
    spare = db.session.scalars(sa.select(Slot).where(Slot.status == SlotStatus.OPEN)).all()
    assert spare
    for slot in spare:
        assert slot.fill_exhausted_at is not None and slot.fill_exhausted_at < now_utc()
        assert slot.fill_exhausted_reasons is not None
        assert match_slot(slot, now_utc()).candidates == []  # nothing for reconcile to reopen
    offered = [s for s in spare if s.fill_exhausted_reasons.get("already_offered")]
    assert offered, "some spare slots should carry an offer history"


def test_releasing_booked_slots_finds_candidates_at_every_pair(loaded: dict[str, int]) -> None:
    reconcile()
    tomorrow = now_utc() + timedelta(days=1)
    booked = db.session.scalars(
        sa.select(Slot)
        .where(Slot.status == SlotStatus.BOOKED, Slot.start_at > tomorrow)
        .order_by(Slot.start_at)
    ).all()
    pairs = {(s.service_id, s.location_id) for s in booked}
    found = {(s.service_id, s.location_id) for s in booked if match_slot(s, now_utc()).candidates}
    assert found == pairs  # every service at every location has someone waiting who fits

    slot = next(s for s in booked if match_slot(s, now_utc()).candidates)
    release_slot(slot.id, SYSTEM, only_booked=True)
    outcome = advance(slot.id)
    db.session.commit()
    assert outcome.reason == "wave started" and outcome.offers


def test_the_day_view_shows_the_spare_slots_reasons(
    loaded: dict[str, int],
    signed_in: FlaskClient,  # noqa: F811
) -> None:
    slot = db.session.scalars(
        sa.select(Slot)
        .where(Slot.status == SlotStatus.OPEN, Slot.start_at > now_utc())
        .order_by(Slot.start_at)
    ).first()
    assert "Nobody left to ask:" in signed_in.get(f"/staff/slots/{slot.id}").text


def test_no_demo_patient_is_in_two_places_at_once(loaded: dict[str, int]) -> None:
    from sqlalchemy.orm import aliased

    from portal.models import Appointment
    from portal.models.enums import INACTIVE_APPOINTMENT_STATUSES

    first, second = aliased(Appointment), aliased(Appointment)
    first_slot, second_slot = aliased(Slot), aliased(Slot)
    clashes = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(first)
        .join(second, sa.and_(second.patient_id == first.patient_id, second.id > first.id))
        .join(first_slot, first_slot.id == first.slot_id)
        .join(second_slot, second_slot.id == second.slot_id)
        .where(
            first.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
            second.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
            first_slot.start_at < second_slot.end_at,
            second_slot.start_at < first_slot.end_at,
        )
    )
    assert loaded["booked"] > 20
    assert clashes == 0
