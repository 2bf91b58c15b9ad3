"""The best other slots for a patient who lost a race (SPEC §3.5, seed §2, fixed).

Scored with the seed's weights (configurable as the ``alternative_weights`` setting)
against the slot the patient wanted and *their* waitlist entry.

A race has one winner and up to hundreds of losers at the same instant, all shown the
same slot's alternatives: ``alternatives_after_race`` reads a slot's candidates once per
process and shares them for a moment (``SHARED_SECONDS``); only each patient's own busy
times and scores are per patient.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from portal.db import UTCDateTime, db, now_utc
from portal.models import Appointment, Closure, Patient, Slot, WaitlistEntry
from portal.models.enums import INACTIVE_APPOINTMENT_STATUSES, SlotStatus
from portal.services.settings import settings
from portal.services.timezones import to_local, within_windows


@dataclass
class Alternative:
    slot: Slot
    score: int
    reasons: list[str] = field(default_factory=list)


class Timed(Protocol):
    """What scoring reads of a slot."""

    practitioner_id: int
    start_at: datetime
    end_at: datetime


def score_alternative(
    slot: Timed,
    original: Slot,
    entry: WaitlistEntry | None,
    patient_tz: str,
    weights: dict[str, int],
) -> Alternative:
    """Score one open slot against the one the patient wanted."""
    alt = Alternative(slot, weights["base"])  # type: ignore[arg-type]  # a Slot, or its row

    def add(points: int, reason: str) -> None:
        alt.score += points
        alt.reasons.append(reason)

    if slot.practitioner_id == original.practitioner_id:
        add(weights["same_practitioner"], "Same practitioner")
    elif entry and slot.practitioner_id == entry.preferred_practitioner_id:
        add(weights["preferred_practitioner"], "Your preferred practitioner")
    hours = int(abs((slot.start_at - original.start_at).total_seconds()) // 3600)
    penalty = max(hours * weights["per_hour_away"], weights["max_hours_penalty"])
    if penalty:
        alt.score += penalty
    local, original_local = (
        to_local(slot.start_at, patient_tz),
        to_local(original.start_at, patient_tz),
    )
    if local.date() == original_local.date():
        add(weights["same_day"], "Same day")
    if (
        entry
        and entry.windows
        and within_windows(slot.start_at, slot.end_at, patient_tz, entry.windows)
    ):
        add(weights["in_availability"], "Fits your availability")
    if entry and entry.preferred_time and local.hour == entry.preferred_time.hour:
        add(weights["preferred_hour"], "At your preferred time")
    alt.score = max(alt.score, 0)
    return alt


#: Another slot: one the patient is booked into.
_booked = sa.orm.aliased(Slot)


def _live_visits(*columns: Any, patient: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """``columns`` of the patient's live visits (``_booked`` is each visit's slot)."""
    return (
        sa.select(*columns)
        .select_from(_booked)
        .join(Appointment, Appointment.slot_id == _booked.id)
        .where(
            Appointment.patient_id == patient,
            Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
        )
    )


def _bookable() -> list[sa.ColumnElement[bool]]:
    """Conditions on ``Slot`` for a slot a patient could book now: open, ahead, clear (of
    the patient's other appointments but the one being moved).

    Bound parameters: ``bookable_patient``, ``bookable_now``, ``bookable_ignoring``
    (an appointment id, 0 for none). Built once: a request only binds values.
    """
    in_closure = (
        sa.select(Closure.id)
        .where(
            sa.or_(Closure.location_id.is_(None), Closure.location_id == Slot.location_id),
            Closure.start_at < Slot.end_at,
            Closure.end_at > Slot.start_at,
        )
        .exists()
    )
    patient_busy = (
        _live_visits(Appointment.id, patient=sa.bindparam("bookable_patient", type_=sa.Integer))
        .where(
            Appointment.id != sa.bindparam("bookable_ignoring", type_=sa.Integer),
            _booked.start_at < Slot.end_at,
            _booked.end_at > Slot.start_at,
        )
        .exists()
    )
    return [
        Slot.status == SlotStatus.OPEN,
        Slot.start_at > sa.bindparam("bookable_now", type_=UTCDateTime()),
        ~in_closure,
        ~patient_busy,
    ]


_BOOKABLE = _bookable()


def _candidates(*columns: Any, patient_free: bool) -> sa.Select[Any]:
    """The open slots of ``original``'s service and location up to a horizon, soonest
    first, that a patient could book instead of it (``patient_free``: also clear of
    the patient's visits; else the patient-independent half, shared by a race's losers).
    """
    return (
        sa.select(*columns)
        .where(
            Slot.service_id == sa.bindparam("service_id", type_=sa.Integer),
            Slot.location_id == sa.bindparam("location_id", type_=sa.Integer),
            Slot.id != sa.bindparam("original_id", type_=sa.Integer),
            Slot.start_at <= sa.bindparam("horizon_end", type_=UTCDateTime()),
            *(_BOOKABLE if patient_free else _BOOKABLE[:3]),
        )
        .order_by(Slot.start_at)
        .limit(sa.bindparam("candidates", type_=sa.Integer))
    )


_CANDIDATES = _candidates(Slot, patient_free=True)

_STILL_BOOKABLE = sa.select(Slot.id).where(
    Slot.id == sa.bindparam("slot_id", type_=sa.Integer), *_BOOKABLE
)


def _bookable_params(
    patient: Patient, now: datetime, ignoring_appointment_id: int | None = None
) -> dict[str, object]:
    return {
        "bookable_patient": patient.id,
        "bookable_now": now,
        "bookable_ignoring": ignoring_appointment_id or 0,
    }


def find_alternatives(
    patient: Patient,
    original: Slot,
    entry: WaitlistEntry | None = None,
    *,
    now: datetime | None = None,
    limit: int | None = None,
    horizon: timedelta | None = None,
    ignoring_appointment_id: int | None = None,
) -> list[Alternative]:
    """Return up to ``limit`` open slots of the same service, best first (within
    ``horizon``, by default the ``alternatives_horizon_hours`` setting)."""
    now = now or now_utc()
    limit = limit or settings().alternatives_limit
    horizon_end = now + (horizon or timedelta(hours=settings().alternatives_horizon_hours))
    slots = db.session.scalars(
        _CANDIDATES,
        {
            "service_id": original.service_id,
            "location_id": original.location_id,
            "original_id": original.id,
            "horizon_end": horizon_end,
            "candidates": max(50, limit),
            **_bookable_params(patient, now, ignoring_appointment_id),
        },
    ).all()
    return _best(slots, original, entry, patient.timezone, limit)


def _best(
    slots: Any, original: Slot, entry: WaitlistEntry | None, patient_tz: str, limit: int
) -> list[Alternative]:
    """Score ``slots`` against ``original`` for this patient; the ``limit`` best first."""
    weights = settings().alternative_weights
    scored = [score_alternative(s, original, entry, patient_tz, weights) for s in slots]
    scored.sort(key=lambda a: (-a.score, a.slot.start_at))
    return scored[:limit]


def still_bookable(slot: Slot, patient: Patient, now: datetime | None = None) -> bool:
    """Whether ``patient`` could book ``slot`` itself now (after their offer of it ended)."""
    params = {"slot_id": slot.id, **_bookable_params(patient, now or now_utc())}
    return db.session.scalar(_STILL_BOOKABLE, params) is not None


#: How long the losers of one race share a slot's candidates (per process). A time taken
#: meanwhile may still be shown; booking it re-checks everything (``is_alternative_for``).
SHARED_SECONDS = 2.0

#: Every column of the slot, as rows (shared between sessions, unlike ORM objects).
_SHARED_CANDIDATES = _candidates(*Slot.__table__.columns, patient_free=False)

#: A patient's live visits in a stretch of time: what their alternatives must not overlap.
_BUSY = _live_visits(
    _booked.start_at, _booked.end_at, patient=sa.bindparam("patient_id", type_=sa.Integer)
).where(
    _booked.end_at > sa.bindparam("after", type_=UTCDateTime()),
    _booked.start_at < sa.bindparam("before", type_=UTCDateTime()),
)


@dataclass(frozen=True)
class _Shared:
    read_at: datetime
    candidates: tuple[sa.Row[Any], ...]  # a slot's columns, read as attributes

    @property
    def latest_end(self) -> datetime | None:
        """When the last candidate ends: a visit starting later overlaps none of them."""
        return max((c.end_at for c in self.candidates), default=None)


_shared: dict[int, _Shared] = {}
_shared_lock = threading.Lock()


def _shared_candidates(original: Slot, now: datetime, limit: int) -> _Shared:
    """The slot's candidates, read at most once per ``SHARED_SECONDS`` in this process."""
    fresh = timedelta(seconds=SHARED_SECONDS)
    with _shared_lock:
        found = _shared.get(original.id)
        if found is not None and timedelta(0) <= now - found.read_at < fresh:
            return found
        for slot_id in [k for k, v in _shared.items() if not now - v.read_at < fresh]:
            del _shared[slot_id]
    horizon_end = now + timedelta(hours=settings().alternatives_horizon_hours)
    rows = db.session.execute(
        _SHARED_CANDIDATES,
        {
            "service_id": original.service_id,
            "location_id": original.location_id,
            "original_id": original.id,
            "horizon_end": horizon_end,
            "candidates": max(50, limit),
            "bookable_now": now,
        },
    ).all()
    shared = _Shared(now, tuple(rows))
    with _shared_lock:
        _shared[original.id] = shared
    return shared


def forget_shared_candidates() -> None:
    """Drop every shared read (a slot's times changed wholesale, e.g. between tests)."""
    with _shared_lock:
        _shared.clear()


def alternatives_after_race(
    patient: Patient, original: Slot, entry: WaitlistEntry | None = None
) -> list[Alternative]:
    """``find_alternatives`` for a patient who just lost ``original``, from candidates
    shared by everyone who lost it (one read per slot, not one per loser).

    Per patient: one light query for their own live visits (an alternative never
    overlaps one), the scores, and the chosen few attached to the session without a
    query (``merge(load=False)``).
    """
    now = now_utc()
    limit = settings().alternatives_limit
    shared = _shared_candidates(original, now, limit)
    if not shared.candidates:
        return []
    busy = db.session.execute(
        _BUSY, {"patient_id": patient.id, "after": now, "before": shared.latest_end}
    ).all()
    free = [
        c
        for c in shared.candidates
        if c.start_at > now and not any(s < c.end_at and e > c.start_at for s, e in busy)
    ]
    chosen = _best(free, original, entry, patient.timezone, limit)
    for alternative in chosen:
        alternative.slot = _attach(alternative.slot)  # type: ignore[arg-type]
    return chosen


def _attach(candidate: sa.Row[Any]) -> Slot:
    """The candidate as this session's ``Slot``, without reading it again (one this
    session already holds is kept as it is: it may be fresher than the shared read)."""
    held = db.session.identity_map.get(sa.orm.util.identity_key(Slot, candidate.id))
    if held is not None:
        return held  # type: ignore[no-any-return]
    slot = Slot(**candidate._asdict())
    if slot.fill_exhausted_reasons is not None:  # each session its own copy of the JSON
        slot.fill_exhausted_reasons = dict(slot.fill_exhausted_reasons)
    sa.orm.make_transient_to_detached(slot)
    return db.session.merge(slot, load=False)


def is_alternative_for(
    slot: Slot,
    original: Slot,
    patient: Patient,
    now: datetime | None = None,
    *,
    original_allowed: bool = False,
) -> bool:
    """Whether ``slot`` may be booked instead of ``original`` right now.

    ``original_allowed``: the patient's offer of ``original`` ended unanswered, so the
    slot itself is a choice while it is still open.
    """
    if slot.id == original.id:
        return original_allowed and still_bookable(slot, patient, now)
    return any(
        a.slot.id == slot.id for a in find_alternatives(patient, original, now=now, limit=50)
    )
