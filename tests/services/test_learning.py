"""The learned acceptance estimate: cold start, updates as answers arrive, reasons, waves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest

from portal.clock import ManualClock, use_clock
from portal.db import db, now_utc
from portal.models import OfferPolicy, Slot
from portal.models.enums import OfferMode, OfferStatus
from portal.queue import _PENDING
from portal.services import learning
from portal.services.filling import advance
from portal.services.matching import Exclusion, match_slot
from portal.services.timezones import zone
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app", "daytime")
NY = "America/New_York"
#: A Wednesday at 11:00 in New York, outside the quiet hours (21:00-08:00).
DAYTIME = datetime(2026, 6, 3, 11, 0, tzinfo=zone(NY))


@pytest.fixture
def daytime() -> Iterator[ManualClock]:
    with use_clock(ManualClock(DAYTIME.astimezone(UTC))) as clock:
        yield clock


def _expiry_jobs() -> list[dict]:
    return [j for j in db.session.info.get(_PENDING, []) if j["spec"].path.endswith("expire_wave")]


def _tuesday(hour: int, weeks_ahead: int = 1) -> datetime:
    """A Tuesday at ``hour`` New York time, ``weeks_ahead`` weeks from now."""
    today = now_utc().astimezone(zone(NY)).date()
    day = today + timedelta(days=(1 - today.weekday()) % 7 + 7 * weeks_ahead)
    return datetime.combine(day, time(hour), tzinfo=zone(NY))


def _past_offer(patient, status: OfferStatus, start: datetime, practitioner) -> None:
    """An answered offer made two days before ``start`` (a past one is moved back)."""
    slot = f.slot(start_at=start, practitioner=practitioner)
    entry = f.waitlist_entry(patient=patient, slot=slot)
    f.offer(slot=slot, entry=entry, status=status, created_at=start - timedelta(days=2))


def test_a_new_patient_gets_the_clinics_rate_and_says_so() -> None:
    slot = f.slot(start_at=_tuesday(10))
    patient = f.patient()
    estimate = learning.estimates_for([patient], slot, now_utc())[patient.id]
    assert estimate.probability == pytest.approx(learning.PRIOR_RATE, abs=0.02)
    assert estimate.evidence == 0
    assert estimate.points == 0
    assert estimate.reason.startswith("no answers yet")


def test_accepting_tuesday_mornings_raises_the_estimate_for_one_and_explains_it() -> None:
    practitioner = f.practitioner()
    patient, other = f.patient(), f.patient()
    for weeks in (-3, -2):
        _past_offer(patient, OfferStatus.ACCEPTED, _tuesday(10, weeks), practitioner)
    _past_offer(other, OfferStatus.EXPIRED, _tuesday(10, -3), practitioner)
    slot = f.slot(start_at=_tuesday(9), practitioner=practitioner)
    estimates = learning.estimates_for([patient, other], slot, now_utc())
    assert estimates[patient.id].probability > 0.3
    assert estimates[patient.id].probability > 3 * estimates[other.id].probability
    assert estimates[patient.id].points > 0
    assert estimates[patient.id].reason.startswith("usually books Tuesday mornings")


def test_each_answer_counts_at_once() -> None:
    practitioner = f.practitioner()
    patient = f.patient()
    slot = f.slot(start_at=_tuesday(15), practitioner=practitioner)
    before = learning.estimates_for([patient], slot, now_utc())[patient.id].probability
    _past_offer(patient, OfferStatus.DECLINED, _tuesday(15, -1), practitioner)
    after_decline = learning.estimates_for([patient], slot, now_utc())[patient.id].probability
    _past_offer(patient, OfferStatus.ACCEPTED, _tuesday(16, -2), practitioner)
    after_accept = learning.estimates_for([patient], slot, now_utc())[patient.id].probability
    assert after_decline < before < after_accept


def test_withdrawn_offers_are_not_answers() -> None:
    practitioner = f.practitioner()
    patient = f.patient()
    _past_offer(patient, OfferStatus.WITHDRAWN, _tuesday(10, -1), practitioner)
    slot = f.slot(start_at=_tuesday(10), practitioner=practitioner)
    assert learning.estimates_for([patient], slot, now_utc())[patient.id].evidence == 0


@pytest.mark.parametrize(
    ("chances", "target", "largest", "size"),
    [
        ([0.9, 0.1, 0.1], 0.8, 8, 1),
        ([0.5, 0.5, 0.5], 0.8, 8, 3),
        ([0.1] * 20, 0.8, 8, 8),
        ([0.1, 0.1], 0.8, 8, 2),
        ([], 0.8, 8, 1),
    ],
)
def test_wave_size_stops_once_someone_is_likely_enough(chances, target, largest, size) -> None:
    assert learning.wave_size(chances, target, largest) == size


def _learned(category: str = "injectables") -> None:
    db.session.add(OfferPolicy(category=category, mode=OfferMode.LEARNED, wave_size=3))
    db.session.flush()


def test_learned_mode_ranks_by_the_estimate_and_shows_the_reason() -> None:
    _learned()
    practitioner = f.practitioner()
    slot = f.slot(start_at=_tuesday(10), practitioner=practitioner)
    keen, new = f.patient(), f.patient()
    f.waitlist_entry(patient=new, slot=slot, created_at=now_utc() - timedelta(days=20))
    f.waitlist_entry(patient=keen, slot=slot)
    for weeks in (-3, -2):
        _past_offer(keen, OfferStatus.ACCEPTED, _tuesday(11, weeks), practitioner)
    for _ in range(8):  # the rest of the clinic mostly lets offers expire
        _past_offer(f.patient(), OfferStatus.EXPIRED, _tuesday(11, -2), practitioner)
    candidates = match_slot(slot, now_utc()).candidates
    assert [c.patient.id for c in candidates] == [keen.id, new.id]
    assert any(r.startswith("usually books Tuesday mornings") for r in candidates[0].reasons)
    assert candidates[0].acceptance > candidates[1].acceptance


def test_waves_mode_keeps_todays_ranking_but_records_the_estimate() -> None:
    slot = f.slot(start_at=_tuesday(10))
    f.waitlist_entry(slot=slot)
    db.session.add(OfferPolicy(category="injectables", mode=OfferMode.WAVES, wave_size=3))
    outcome = advance(slot.id)
    assert len(outcome.offers) == 1
    offer = outcome.offers[0]
    assert offer.predicted_acceptance == pytest.approx(learning.PRIOR_RATE, abs=0.02)
    assert not any("likely" in r for r in offer.score_reasons)


def test_learned_waves_grow_until_someone_is_likely_to_accept() -> None:
    _learned()
    slot = f.slot(start_at=_tuesday(10))
    for _ in range(12):
        f.waitlist_entry(slot=slot)
    outcome = advance(slot.id)
    # Nobody has answered anything: each is at the clinic's ~11%, so the wave is the largest.
    assert len(outcome.offers) == 8
    assert all(o.predicted_acceptance is not None for o in outcome.offers)


def test_learned_mode_caps_offers_per_week() -> None:
    _learned()
    practitioner = f.practitioner()
    patient = f.patient()
    for days in (1, 2, 3):
        old = f.slot(start_at=_tuesday(10, 2) + timedelta(days=days), practitioner=practitioner)
        f.offer(
            slot=old,
            entry=f.waitlist_entry(patient=patient, slot=old),
            status=OfferStatus.DECLINED,
            created_at=now_utc() - timedelta(days=days + 1),
        )
    slot: Slot = f.slot(start_at=_tuesday(10), practitioner=practitioner)
    f.waitlist_entry(patient=patient, slot=slot)
    match = match_slot(slot, now_utc())
    assert match.candidates == []
    assert match.excluded[Exclusion.WEEKLY_CAP] == 1


def test_learned_waves_stay_open_longer_for_slots_a_day_or_more_away() -> None:
    _learned()
    far = f.slot(start_at=_tuesday(10, 2))
    f.waitlist_entry(slot=far)
    offer = advance(far.id).offers[0]
    assert offer.window_expires_at - now_utc() > timedelta(minutes=110)
    soon = f.slot(start_at=now_utc() + timedelta(hours=3))
    f.waitlist_entry(slot=soon, short_notice_ok=True)
    offer = advance(soon.id).offers[0]
    assert offer.window_expires_at - now_utc() <= timedelta(minutes=30)


@pytest.mark.parametrize(
    ("mode", "minutes"),
    [(OfferMode.LEARNED, 75), (OfferMode.WAVES, 30)],
)
def test_learned_waves_give_slow_readers_a_share_of_the_time_left(mode, minutes) -> None:
    """Six hours ahead the cutoff is five hours away: a learned wave gets a quarter of it."""
    db.session.add(OfferPolicy(category="injectables", mode=mode, wave_size=3))
    slot = f.slot(start_at=now_utc() + timedelta(hours=6))
    f.waitlist_entry(slot=slot, short_notice_ok=True)
    offer = advance(slot.id).offers[0]
    assert offer.window_expires_at - now_utc() == timedelta(minutes=minutes)


def test_a_learned_wave_asked_for_at_night_stays_open_into_the_morning(daytime) -> None:
    _learned()
    slot = f.slot(start_at=_tuesday(10))
    f.waitlist_entry(slot=slot)
    night = DAYTIME.replace(hour=22, minute=30)
    daytime.set(night.astimezone(UTC))
    offer = advance(slot.id).offers[0]
    morning = (night + timedelta(days=1)).replace(hour=8, minute=0)
    assert offer.window_expires_at == morning + timedelta(minutes=120)
    assert [j["at"] for j in _expiry_jobs()] == [offer.window_expires_at + timedelta(seconds=1)]


def test_a_learned_wave_for_a_slot_before_the_morning_cutoff_goes_at_night(daytime) -> None:
    _learned()
    night = DAYTIME.replace(hour=22, minute=30)
    slot = f.slot(start_at=(night + timedelta(days=1)).replace(hour=8, minute=45))
    f.waitlist_entry(slot=slot, short_notice_ok=True)
    daytime.set(night.astimezone(UTC))
    offer = advance(slot.id).offers[0]
    # Nobody reads at night: the window runs on into the morning, up to the cutoff.
    assert offer.window_expires_at == slot.start_at - timedelta(minutes=60)


def test_a_learned_window_ending_in_quiet_hours_runs_on_after_them(daytime) -> None:
    _learned()
    slot = f.slot(start_at=_tuesday(10, 2))
    f.waitlist_entry(slot=slot)
    evening = DAYTIME.replace(hour=20, minute=0)
    daytime.set(evening.astimezone(UTC))
    offer = advance(slot.id).offers[0]
    morning = (evening + timedelta(days=1)).replace(hour=8, minute=0)
    assert offer.window_expires_at == morning + timedelta(minutes=120)
