"""Who should be offered an opened slot, in what order, and why the others are not
(SPEC §3.2–3.3)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

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
    OfferMode,
    OfferStatus,
    WaitlistStatus,
)
from portal.services.learning import estimates_for
from portal.services.settings import fill_policy, settings
from portal.services.timezones import to_local, within_windows

HISTORY = timedelta(days=180)


@dataclass
class Candidate:
    """A waitlist entry that fits the slot, with its score and the reasons for it."""

    entry: WaitlistEntry
    patient: Patient
    score: int = 0
    reasons: list[str] = field(default_factory=list)
    #: The learned chance they accept (``services.learning``), stored on the offer.
    acceptance: float | None = None

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


def busy_patient_ids(slot: Slot) -> set[int]:
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
    week: int = 0  # offers in the last 7 days


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
        entry.week += created_at > now - timedelta(days=7)
        tz = zones[patient_id]
        if to_local(created_at, tz).date() == to_local(now, tz).date():
            entry.today += 1
    return history


class Exclusion(StrEnum):
    """Why a waiting patient was not offered a slot (the first that applies)."""

    CLOSURE = "closure"  # the slot is inside a closure: nobody can be asked
    PAST_CUTOFF = "past_cutoff"  # too close to the start: nobody can be asked
    ALREADY_OFFERED = "already_offered"
    UNREACHABLE = "unreachable"  # flagged unreachable, or no phone and no email
    OPTED_OUT = "opted_out"  # opted out of texts and calls, and no email to write to
    BUSY = "busy"  # an overlapping appointment or pending offer
    SHORT_NOTICE = "short_notice"  # the slot is soon and they did not accept short notice
    OUTSIDE_DATES = "outside_dates"
    OUTSIDE_WINDOW = "outside_window"  # not inside their availability windows
    DAILY_CAP = "daily_cap"
    WEEKLY_CAP = "weekly_cap"  # the learned mode's cap on offers per patient per 7 days


#: How staff read a count of each reason ("4 over the daily cap").
EXCLUSION_LABELS = {
    Exclusion.CLOSURE: "{n} waiting, but the slot is inside a closure",
    Exclusion.PAST_CUTOFF: "{n} waiting, but it is too close to the start to offer",
    Exclusion.ALREADY_OFFERED: "{n} already offered",
    Exclusion.UNREACHABLE: "{n} unreachable",
    Exclusion.OPTED_OUT: "{n} opted out of messages",
    Exclusion.BUSY: "{n} busy",
    Exclusion.SHORT_NOTICE: "{n} not taking short notice",
    Exclusion.OUTSIDE_DATES: "{n} outside their dates",
    Exclusion.OUTSIDE_WINDOW: "{n} outside their hours",
    Exclusion.DAILY_CAP: "{n} over the daily cap",
    Exclusion.WEEKLY_CAP: "{n} over the weekly cap",
}


#: Why one waiting patient was left out, as staff read it beside their name.
EXCLUSION_REASONS = {
    Exclusion.CLOSURE: "The clinic is closed at that time",
    Exclusion.PAST_CUTOFF: "Too close to the start for offers",
    Exclusion.ALREADY_OFFERED: "Already offered this slot",
    Exclusion.UNREACHABLE: "Unreachable (flagged, or no phone and no email)",
    Exclusion.OPTED_OUT: "Opted out of texts and calls, and no email",
    Exclusion.BUSY: "Has an appointment or another offer at that time",
    Exclusion.SHORT_NOTICE: "Doesn't take short-notice offers",
    Exclusion.OUTSIDE_DATES: "Outside the dates they gave",
    Exclusion.OUTSIDE_WINDOW: "Outside the hours they gave",
    Exclusion.DAILY_CAP: "Has had today's maximum of offers",
    Exclusion.WEEKLY_CAP: "Has had this week's maximum of offers",
}


@dataclass(frozen=True)
class LeftOut:
    """A waiting patient not offered the slot, and the first reason why."""

    entry: WaitlistEntry
    patient: Patient
    reason: Exclusion


@dataclass
class Match:
    """The ranked candidates for a slot, and the waiting patients left out, with why."""

    candidates: list[Candidate] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)

    @property
    def excluded(self) -> Counter[Exclusion]:
        """How many were left out for each reason."""
        return Counter(item.reason for item in self.left_out)

    def leave_out(self, entry: WaitlistEntry, patient: Patient, reason: Exclusion) -> None:
        self.left_out.append(LeftOut(entry, patient, reason))


def describe_exclusions(counts: Mapping[str, int] | None) -> str:
    """Say why nobody is left: "4 over the daily cap, 2 busy" (most common first)."""
    if not counts:
        return "nobody is on the waitlist for it"
    known = {reason.value for reason in Exclusion}
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(
        EXCLUSION_LABELS[Exclusion(reason)].format(n=n)
        for reason, n in ranked
        if reason in known and n
    )


def find_candidates(slot: Slot, now: datetime) -> list[Candidate]:
    """Return the ranked waitlist candidates for ``slot`` (empty if it cannot be offered)."""
    return match_slot(slot, now).candidates


def match_slot(slot: Slot, now: datetime, blocked: Exclusion | None = None) -> Match:
    """Rank the waitlist entries that fit ``slot``; count the others by why they do not.

    ``blocked`` (or a closure over the slot) rules out everyone for that one reason.
    """
    offered = (
        sa.select(Offer.id)
        .where(Offer.slot_id == slot.id, Offer.patient_id == WaitlistEntry.patient_id)
        .exists()
    )
    unreachable = (
        sa.select(PatientFlag.id)
        .where(
            PatientFlag.patient_id == Patient.id,
            PatientFlag.kind == FlagKind.UNREACHABLE,
            PatientFlag.resolved_at.is_(None),
        )
        .exists()
    )
    no_contact = sa.and_(Patient.phone_e164.is_(None), Patient.email.is_(None))
    rows = db.session.execute(
        sa.select(WaitlistEntry, Patient, offered, sa.or_(unreachable, no_contact))
        .join(Patient, Patient.id == WaitlistEntry.patient_id)
        .where(
            WaitlistEntry.service_id == slot.service_id,
            WaitlistEntry.location_id == slot.location_id,
            WaitlistEntry.status == WaitlistStatus.ACTIVE,
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    ).all()
    if blocked is None and rows and closure_for(slot) is not None:
        blocked = Exclusion.CLOSURE
    if blocked is not None:
        return Match(left_out=[LeftOut(entry, patient, blocked) for entry, patient, *_ in rows])

    match = Match()
    busy = busy_patient_ids(slot) if rows else set()
    short_notice = slot.start_at - now < timedelta(hours=settings().short_notice_hours)
    fitting: list[Candidate] = []
    for entry, patient, was_offered, cannot_reach in rows:
        reason = _why_not(slot, entry, patient, was_offered, cannot_reach, busy, short_notice)
        if reason is None:
            fitting.append(Candidate(entry, patient))
        else:
            match.leave_out(entry, patient, reason)
    if not fitting:
        return match

    history = _offer_history([c.patient for c in fitting], now)
    tunables = settings()
    learned = fill_policy(slot.service.category).mode == OfferMode.LEARNED
    for candidate in fitting:
        past = history[candidate.patient.id]
        if past.today >= tunables.daily_offer_cap:
            match.leave_out(candidate.entry, candidate.patient, Exclusion.DAILY_CAP)
            continue
        if learned and past.week >= tunables.learned_weekly_offer_cap:
            match.leave_out(candidate.entry, candidate.patient, Exclusion.WEEKLY_CAP)
            continue
        score_candidate(candidate, slot, now, past.outcomes)
        match.candidates.append(candidate)
    estimates = estimates_for([c.patient for c in match.candidates], slot, now)
    for candidate in match.candidates:
        learnt = estimates[candidate.patient.id]
        candidate.acceptance = learnt.probability
        if learned:
            candidate.add(learnt.points, learnt.reason)
    match.candidates.sort(key=lambda c: (-c.score, c.entry.created_at, c.entry.id))
    return match


def _why_not(
    slot: Slot,
    entry: WaitlistEntry,
    patient: Patient,
    was_offered: bool,
    cannot_reach: bool,
    busy: set[int],
    short_notice: bool,
) -> Exclusion | None:
    """Return the first reason this entry cannot be offered the slot, or None if it fits."""
    if was_offered:
        return Exclusion.ALREADY_OFFERED
    if cannot_reach:
        return Exclusion.UNREACHABLE
    if patient.sms_opt_out and not patient.email:
        return Exclusion.OPTED_OUT
    if patient.id in busy:
        return Exclusion.BUSY
    if short_notice and not entry.short_notice_ok:
        return Exclusion.SHORT_NOTICE
    local_day = to_local(slot.start_at, patient.timezone).date()
    if (entry.earliest and local_day < entry.earliest) or (
        entry.latest and local_day > entry.latest
    ):
        return Exclusion.OUTSIDE_DATES
    if not within_windows(slot.start_at, slot.end_at, patient.timezone, entry.windows):
        return Exclusion.OUTSIDE_WINDOW
    return None


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
