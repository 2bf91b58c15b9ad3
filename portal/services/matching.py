"""Who should be offered an opened slot, and in what order (SPEC §3.2–3.3)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db
from portal.models import (
    Appointment,
    Closure,
    Offer,
    Patient,
    PatientFlag,
    Slot,
    WaitlistEntry,
)
from portal.models.enums import (
    INACTIVE_APPOINTMENT_STATUSES,
    FlagKind,
    OfferStatus,
    WaitlistStatus,
)
from portal.services.settings import settings
from portal.services.timezones import to_local, within_windows

HISTORY = timedelta(days=180)


@dataclass
class Candidate:
    """A waitlist entry that fits the slot, with its score and the reasons for it."""

    entry: WaitlistEntry
    patient: Patient
    score: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, points: int, reason: str) -> None:
        if points:
            self.score += points
            self.reasons.append(f"{reason} ({points:+d})")


def closure_for(slot: Slot) -> Closure | None:
    """Return a closure overlapping the slot at its location (or everywhere), if any."""
    return db.session.scalar(
        sa.select(Closure)
        .where(
            sa.or_(Closure.location_id.is_(None), Closure.location_id == slot.location_id),
            Closure.start_at < slot.end_at,
            Closure.end_at > slot.start_at,
        )
        .limit(1)
    )


def _overlapping(slot: Slot) -> sa.ColumnElement[bool]:
    return sa.and_(Slot.start_at < slot.end_at, Slot.end_at > slot.start_at)


def _busy_patient_ids(slot: Slot) -> set[int]:
    """Patients holding an appointment, or a pending offer, that overlaps the slot."""
    booked = (
        sa.select(Appointment.patient_id)
        .join(Slot, Slot.id == Appointment.slot_id)
        .where(_overlapping(slot), Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES))
    )
    offered = (
        sa.select(Offer.patient_id)
        .join(Slot, Slot.id == Offer.slot_id)
        .where(_overlapping(slot), Offer.status == OfferStatus.PENDING, Slot.id != slot.id)
    )
    return set(db.session.scalars(booked.union(offered)))


@dataclass
class OfferHistory:
    """A patient's recent offers: outcomes (for ranking) and how many came today."""

    outcomes: Counter[str] = field(default_factory=Counter)
    today: int = 0


def _offer_history(patients: list[Patient], now: datetime) -> dict[int, OfferHistory]:
    """One query for every candidate's offers of the last ``HISTORY``."""
    zones = {p.id: p.timezone for p in patients}
    history = {pid: OfferHistory() for pid in zones}
    rows = db.session.execute(
        sa.select(Offer.patient_id, Offer.status, Offer.created_at).where(
            Offer.patient_id.in_(list(zones)), Offer.created_at > now - HISTORY
        )
    )
    for patient_id, status, created_at in rows:
        entry = history[patient_id]
        entry.outcomes[status] += 1
        tz = zones[patient_id]
        if to_local(created_at, tz).date() == to_local(now, tz).date():
            entry.today += 1
    return history


def find_candidates(slot: Slot, now: datetime) -> list[Candidate]:
    """Return the ranked waitlist candidates for ``slot`` (empty if it cannot be offered)."""
    if closure_for(slot) is not None:
        return []
    already_offered = sa.select(Offer.patient_id).where(Offer.slot_id == slot.id)
    unreachable = sa.select(PatientFlag.patient_id).where(
        PatientFlag.kind == FlagKind.UNREACHABLE, PatientFlag.resolved_at.is_(None)
    )
    rows = db.session.execute(
        sa.select(WaitlistEntry, Patient)
        .join(Patient, Patient.id == WaitlistEntry.patient_id)
        .where(
            WaitlistEntry.service_id == slot.service_id,
            WaitlistEntry.location_id == slot.location_id,
            WaitlistEntry.status == WaitlistStatus.ACTIVE,
            WaitlistEntry.patient_id.not_in(already_offered),
            WaitlistEntry.patient_id.not_in(unreachable),
            sa.or_(Patient.phone_e164.is_not(None), Patient.email.is_not(None)),
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    ).all()
    if not rows:
        return []

    busy = _busy_patient_ids(slot)
    short_notice = slot.start_at - now < timedelta(hours=settings().short_notice_hours)
    fitting: list[Candidate] = []
    for entry, patient in rows:
        if patient.id in busy or (short_notice and not entry.short_notice_ok):
            continue
        local_day = to_local(slot.start_at, patient.timezone).date()
        if (entry.earliest and local_day < entry.earliest) or (
            entry.latest and local_day > entry.latest
        ):
            continue
        if not within_windows(slot.start_at, slot.end_at, patient.timezone, entry.windows):
            continue
        fitting.append(Candidate(entry, patient))
    if not fitting:
        return []

    history = _offer_history([c.patient for c in fitting], now)
    cap = settings().daily_offer_cap
    fitting = [c for c in fitting if history[c.patient.id].today < cap]
    for candidate in fitting:
        score_candidate(candidate, slot, now, history[candidate.patient.id].outcomes)
    fitting.sort(key=lambda c: (-c.score, c.entry.created_at, c.entry.id))
    return fitting


def score_candidate(candidate: Candidate, slot: Slot, now: datetime, history: Counter) -> None:
    """Score one candidate with reasons a member of staff can read."""
    entry = candidate.entry
    candidate.add(10 * entry.priority, "staff priority")
    candidate.add(min((now - entry.created_at).days, 30), "days on the waitlist")
    if entry.preferred_practitioner_id == slot.practitioner_id:
        candidate.add(20, "preferred practitioner")
    if entry.preferred_time is not None:
        local = to_local(slot.start_at, candidate.patient.timezone)
        minutes_off = abs(
            (local.hour * 60 + local.minute)
            - (entry.preferred_time.hour * 60 + entry.preferred_time.minute)
        )
        if minutes_off <= 60:
            candidate.add(10, "near preferred time")
    candidate.add(min(5 * history[OfferStatus.ACCEPTED], 10), "accepted past offers")
    candidate.add(-min(3 * history[OfferStatus.EXPIRED], 9), "let past offers expire")
