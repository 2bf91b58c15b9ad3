"""Matching, ranking and waves (SPEC §3.2–3.3)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import AuditEvent, Closure, Notification, Offer, OfferPolicy, Slot
from portal.models.enums import OfferMode, OfferStatus, Purpose, SlotStatus, WaitlistStatus
from portal.services.filling import advance
from portal.services.matching import find_candidates
from portal.services.settings import set_setting
from portal.services.timezones import zone
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")


def _slot_tomorrow_at(hour: int, tz: str = "America/New_York", **kw: object) -> Slot:
    """A slot two days out at ``hour`` local time in a clinic in ``tz``."""
    day = (now_utc() + timedelta(days=2)).astimezone(zone(tz)).date()
    local = datetime.combine(day, time(hour), tzinfo=zone(tz))
    loc = f.location(timezone=tz)
    return f.slot(start_at=local, practitioner=f.practitioner(location=loc), **kw)


def _entries(slot, n: int, **kw) -> list:
    return [f.waitlist_entry(slot=slot, **kw) for _ in range(n)]


def test_matching_respects_windows_in_the_patients_own_zone() -> None:
    slot = _slot_tomorrow_at(10)  # 10:00 in New York = 07:00 in Los Angeles
    weekday = slot.start_at.astimezone(zone("America/New_York")).weekday()
    la = f.patient(timezone="America/Los_Angeles")
    ny = f.patient(timezone="America/New_York")
    window = [{"weekday": weekday, "start": "09:00", "end": "12:00"}]
    f.waitlist_entry(patient=la, slot=slot, windows=window)
    f.waitlist_entry(patient=ny, slot=slot, windows=window)
    matched = {c.patient.id for c in find_candidates(slot, now_utc())}
    assert matched == {ny.id}


def test_matching_respects_date_range() -> None:
    slot = _slot_tomorrow_at(11)
    day = slot.start_at.date()
    inside = f.waitlist_entry(
        slot=slot, earliest=day - timedelta(days=1), latest=day + timedelta(days=1)
    )
    f.waitlist_entry(slot=slot, latest=day - timedelta(days=1))
    f.waitlist_entry(slot=slot, earliest=day + timedelta(days=1))
    assert [c.entry.id for c in find_candidates(slot, now_utc())] == [inside.id]


def test_no_candidates_inside_a_closure() -> None:
    slot = _slot_tomorrow_at(11)
    _entries(slot, 2)
    db.session.add(
        Closure(location_id=None, start_at=slot.start_at - timedelta(hours=1), end_at=slot.end_at)
    )
    assert find_candidates(slot, now_utc()) == []


def test_skips_patients_with_an_overlapping_appointment_or_offer() -> None:
    slot = _slot_tomorrow_at(11)
    busy, offered, free = f.patient(), f.patient(), f.patient()
    for p in (busy, offered, free):
        f.waitlist_entry(patient=p, slot=slot)
    other = f.slot(start_at=slot.start_at + timedelta(minutes=30), status=SlotStatus.BOOKED)
    f.appointment(slot=other, patient=busy)
    third = f.slot(start_at=slot.start_at - timedelta(minutes=30))
    f.offer(slot=third, entry=f.waitlist_entry(patient=offered, slot=third))
    assert [c.patient.id for c in find_candidates(slot, now_utc())] == [free.id]


def test_daily_offer_cap_is_enforced() -> None:
    set_setting("daily_offer_cap", 1)
    slot = _slot_tomorrow_at(11)
    patient = f.patient()
    f.waitlist_entry(patient=patient, slot=slot)
    earlier = f.slot()
    f.offer(
        slot=earlier,
        entry=f.waitlist_entry(patient=patient, slot=earlier),
        status=OfferStatus.DECLINED,
    )
    assert find_candidates(slot, now_utc()) == []


def test_unreachable_patients_are_skipped() -> None:
    slot = _slot_tomorrow_at(11)
    nowhere = f.patient(phone_e164=None, email=None)
    f.waitlist_entry(patient=nowhere, slot=slot)
    f.waitlist_entry(slot=slot, status=WaitlistStatus.UNREACHABLE)
    assert find_candidates(slot, now_utc()) == []


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"priority": 2}, "staff priority (+20)"),
        ({"preferred_practitioner": True}, "preferred practitioner (+20)"),
        ({"preferred_time": True}, "near preferred time (+10)"),
    ],
)
def test_ranking_reasons_are_explainable(setup: dict, reason: str) -> None:
    slot = _slot_tomorrow_at(11)
    kw: dict = {}
    if "priority" in setup:
        kw["priority"] = setup["priority"]
    if setup.get("preferred_practitioner"):
        kw["preferred_practitioner_id"] = slot.practitioner_id
    if setup.get("preferred_time"):
        kw["preferred_time"] = time(11, 30)
    favoured = f.waitlist_entry(slot=slot, **kw)
    f.waitlist_entry(slot=slot)
    ranked = find_candidates(slot, now_utc())
    assert ranked[0].entry.id == favoured.id
    assert reason in ranked[0].reasons


@pytest.mark.parametrize(
    ("mode", "size", "expected"),
    [(OfferMode.SEQUENTIAL, 1, 1), (OfferMode.WAVES, 3, 3), (OfferMode.BROADCAST, 1, 5)],
)
def test_wave_size_follows_the_category_mode(mode: OfferMode, size: int, expected: int) -> None:
    slot = _slot_tomorrow_at(11)
    db.session.add(OfferPolicy(category=slot.service.category, mode=mode, wave_size=size))
    _entries(slot, 5)
    outcome = advance(slot.id)
    assert len(outcome.offers) == expected
    # Every offer has its notification written in the same transaction.
    notes = db.session.scalars(
        sa.select(Notification).where(Notification.purpose == Purpose.OFFER)
    ).all()
    assert len(notes) == expected


def test_next_wave_only_after_the_window_and_then_exhaustion() -> None:
    slot = _slot_tomorrow_at(11)
    _entries(slot, 4)
    first = advance(slot.id)
    assert first.wave == 1 and len(first.offers) == 3
    assert advance(slot.id).reason == "wave in progress"
    later = first.offers[0].window_expires_at + timedelta(seconds=1)
    second = advance(slot.id, now=later)
    assert second.wave == 2 and len(second.offers) == 1 and second.expired == 3
    after = second.offers[0].window_expires_at + timedelta(seconds=1)
    third = advance(slot.id, now=after)
    assert third.reason == "no matching waitlist entries"
    assert slot.fill_exhausted_at is not None and slot.status == SlotStatus.OPEN
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"slot.wave_started", "offer.expired", "slot.fill_exhausted"} <= actions


def test_window_is_shorter_near_the_slot_and_stops_at_cutoff() -> None:
    soon = now_utc() + timedelta(hours=3)
    slot = f.slot(start_at=soon)
    f.waitlist_entry(slot=slot, short_notice_ok=True)
    outcome = advance(slot.id)
    expires = outcome.offers[0].window_expires_at
    assert expires - now_utc() <= timedelta(minutes=10, seconds=5)
    too_late = f.slot(start_at=now_utc() + timedelta(minutes=30))
    f.waitlist_entry(slot=too_late, short_notice_ok=True)
    assert advance(too_late.id).reason == "past the offer cutoff"


def test_short_notice_slots_go_only_to_entries_that_accept_short_notice() -> None:
    slot = f.slot(start_at=now_utc() + timedelta(minutes=100))
    ok = f.waitlist_entry(slot=slot, short_notice_ok=True)
    f.waitlist_entry(slot=slot, short_notice_ok=False)
    assert [c.entry.id for c in find_candidates(slot, now_utc())] == [ok.id]


def test_advance_twice_never_offers_a_patient_twice() -> None:
    slot = _slot_tomorrow_at(11)
    _entries(slot, 2)
    advance(slot.id)
    advance(slot.id, now=now_utc() + timedelta(hours=1))
    per_patient = db.session.execute(
        sa.select(Offer.patient_id, sa.func.count()).group_by(Offer.patient_id)
    ).all()
    assert sorted(count for _, count in per_patient) == [1, 1]


def _noon_in_new_york() -> datetime:
    return datetime.combine(
        now_utc().date() + timedelta(days=1), time(12), tzinfo=zone("America/New_York")
    )


def test_a_waves_texts_are_queued_best_ranked_first_whatever_path_each_took() -> None:
    from portal.clock import ManualClock, use_clock
    from portal.models import NotificationAttempt
    from portal.queue import get_queue

    with use_clock(ManualClock(_noon_in_new_york())):
        queue = get_queue("notifications")
        queue.empty()
        db.session.add(OfferPolicy(category="injectables", mode=OfferMode.BROADCAST))
        slot = _slot_tomorrow_at(15, service=f.service(category="injectables"))
        entries = _entries(slot, 4)
        entries[0].patient.phone_e164 = None  # no valid phone: planned one at a time (flagged)
        db.session.commit()
        offers = sorted(advance(slot.id).offers, key=lambda o: o.id)
        db.session.commit()

        queued_for = [
            db.session.get(NotificationAttempt, job.args[0]).patient_id for job in queue.jobs
        ]
        assert queued_for == [o.patient_id for o in offers]
        queue.empty()


def test_a_wave_started_by_a_sweep_whose_now_is_stale_keeps_the_quiet_hours() -> None:
    from portal.clock import ManualClock, use_clock
    from portal.models import NotificationAttempt
    from portal.models.enums import AttemptStatus, Channel

    nearly_nine_pm = datetime.combine(
        now_utc().date() + timedelta(days=1), time(20, 59, 50), tzinfo=zone("America/New_York")
    )
    clock = ManualClock(nearly_nine_pm)
    with use_clock(clock):
        slot = _slot_tomorrow_at(15)
        _entries(slot, 1)
        db.session.commit()
        swept_at = now_utc()  # the reconcile sweep's ``now``, taken as it began
        clock.advance(timedelta(seconds=40))  # 21:00:30 when this slot's turn comes
        advance(slot.id, swept_at)
        db.session.commit()

        texts = db.session.scalars(
            sa.select(NotificationAttempt).where(NotificationAttempt.channel == Channel.SMS)
        ).all()
        assert texts, "the offer went nowhere"
        assert all(t.status != AttemptStatus.QUEUED or t.not_before > now_utc() for t in texts), (
            "an offer text queued to go at 21:00:30 in the patient's zone"
        )
