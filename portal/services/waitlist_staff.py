"""What staff do to waitlist entries: list and filter, add or edit, pause, resume, remove.

Adding goes through ``waitlist.join_waitlist`` (joining twice edits the active entry); a
paused entry for the same want is edited instead of a second one being made. Pausing or
removing an entry withdraws its pending offers in the same transaction — after locking
the patient's row, the lock every booking of theirs takes, so an accept racing the pause
either books first (and the pause is refused) or finds its offer withdrawn. Nobody is
told anything: the patient asked for it or staff decided, and the offer's unsent messages
stop by themselves (a withdrawn offer is no longer worth sending).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal.db import db, now_utc
from portal.models import Location, Offer, Patient, Practitioner, Service, WaitlistEntry
from portal.models.enums import OfferStatus, WaitlistStatus
from portal.services import audit, waitlist
from portal.services.audit import Action, Actor
from portal.services.booking import lock_patient
from portal.services.errors import Conflict, NotFound
from portal.services.filling import schedule_fill
from portal.services.offers import update_offers

#: Entries staff can still change (the others ended: booked or removed).
EDITABLE = (WaitlistStatus.ACTIVE, WaitlistStatus.PAUSED, WaitlistStatus.UNREACHABLE)
PRIORITY_FILTERS = {
    "raised": WaitlistEntry.priority > 0,
    "normal": WaitlistEntry.priority == 0,
    "lowered": WaitlistEntry.priority < 0,
}


@dataclass(frozen=True)
class EntryFilters:
    """The waitlist page's filters; None means any."""

    service_id: int | None = None
    location_id: int | None = None
    status: WaitlistStatus | None = WaitlistStatus.ACTIVE
    patient: str = ""
    priority: str | None = None


def entries_query(filters: EntryFilters) -> sa.Select[tuple[WaitlistEntry]]:
    """Entries matching ``filters``: highest staff priority first, then longest waiting."""
    query = sa.select(WaitlistEntry).options(
        joinedload(WaitlistEntry.patient),
        joinedload(WaitlistEntry.service),
        joinedload(WaitlistEntry.location),
        joinedload(WaitlistEntry.preferred_practitioner),
    )
    if filters.service_id:
        query = query.where(WaitlistEntry.service_id == filters.service_id)
    if filters.location_id:
        query = query.where(WaitlistEntry.location_id == filters.location_id)
    if filters.status is not None:
        query = query.where(WaitlistEntry.status == filters.status)
    if filters.priority in PRIORITY_FILTERS:
        query = query.where(PRIORITY_FILTERS[filters.priority])
    text = filters.patient.replace("\x00", "").strip()[:100]
    if text:
        digits = "".join(ch for ch in text if ch.isdigit())
        matches = [Patient.name.icontains(text, autoescape=True)]
        if len(digits) >= 3:
            matches.append(Patient.phone_e164.contains(digits, autoescape=True))
        query = query.join(Patient, Patient.id == WaitlistEntry.patient_id).where(sa.or_(*matches))
    return query.order_by(WaitlistEntry.priority.desc(), WaitlistEntry.created_at, WaitlistEntry.id)


@dataclass(frozen=True)
class Preferences:
    """What a patient wants from an entry (everything but who, what and where)."""

    preferred_practitioner: Practitioner | None = None
    earliest: date | None = None
    latest: date | None = None
    windows: list[dict[str, Any]] | None = None
    preferred_time: time | None = None
    short_notice_ok: bool = False
    priority: int = 0


def _paused_entry(patient: Patient, service: Service, location: Location) -> WaitlistEntry | None:
    return db.session.scalars(
        sa.select(WaitlistEntry)
        .where(
            WaitlistEntry.patient_id == patient.id,
            WaitlistEntry.service_id == service.id,
            WaitlistEntry.location_id == location.id,
            WaitlistEntry.status == WaitlistStatus.PAUSED,
        )
        .order_by(WaitlistEntry.id.desc())
        .limit(1)
    ).first()


def save_entry(
    patient: Patient, service: Service, location: Location, prefs: Preferences, actor: Actor
) -> tuple[WaitlistEntry, bool]:
    """Put the patient on the waitlist, or edit the entry they have; return (entry, created)."""
    active = _active_entry_id(patient, service, location)
    paused = None if active else _paused_entry(patient, service, location)
    if paused is not None:
        return update_entry(paused.id, prefs, actor), False
    return waitlist.join_waitlist(
        patient=patient,
        service=service,
        location=location,
        preferred_practitioner=prefs.preferred_practitioner,
        earliest=prefs.earliest,
        latest=prefs.latest,
        windows=prefs.windows,
        preferred_time=prefs.preferred_time,
        short_notice_ok=prefs.short_notice_ok,
        priority=prefs.priority,
        actor=actor,
    )


def _active_entry_id(patient: Patient, service: Service, location: Location) -> int | None:
    return db.session.scalar(
        sa.select(WaitlistEntry.id).where(
            WaitlistEntry.patient_id == patient.id,
            WaitlistEntry.service_id == service.id,
            WaitlistEntry.location_id == location.id,
            WaitlistEntry.status == WaitlistStatus.ACTIVE,
        )
    )


def get_entry(entry_id: int) -> WaitlistEntry:
    entry = db.session.get(WaitlistEntry, entry_id)
    if entry is None:
        raise NotFound("No such waitlist entry.", code="unknown_entry")
    return entry


def update_entry(entry_id: int, prefs: Preferences, actor: Actor) -> WaitlistEntry:
    """Change an entry's preferences (not who, what or where: that is another entry)."""
    entry = get_entry(entry_id)
    lock_patient(entry.patient_id)
    db.session.refresh(entry)
    if entry.status not in EDITABLE:
        raise Conflict(f"This entry is {entry.status.value}; it can no longer change.")
    waitlist.check_preferences(
        entry.service,
        entry.location,
        prefs.preferred_practitioner,
        prefs.earliest,
        prefs.latest,
        prefs.priority,
    )
    fields = waitlist.PREFERENCE_FIELDS
    before = audit.snapshot(entry, *fields)
    entry.preferred_practitioner_id = (
        prefs.preferred_practitioner.id if prefs.preferred_practitioner else None
    )
    entry.earliest, entry.latest = prefs.earliest, prefs.latest
    entry.windows = waitlist.parse_windows(prefs.windows)
    entry.preferred_time = prefs.preferred_time
    entry.short_notice_ok = prefs.short_notice_ok
    entry.priority = prefs.priority
    db.session.flush()
    audit.record(
        actor, Action.WAITLIST_UPDATED, entry, before=before, after=audit.snapshot(entry, *fields)
    )
    return entry


def _set_status(
    entry_id: int,
    to: WaitlistStatus,
    allowed_from: tuple[WaitlistStatus, ...],
    action: Action,
    actor: Actor,
    now: datetime,
) -> WaitlistEntry:
    entry = get_entry(entry_id)
    lock_patient(entry.patient_id)  # the lock every booking of the patient's takes first
    closing = to == WaitlistStatus.CANCELLED
    try:
        with db.session.begin_nested():
            changed = db.session.execute(
                sa.update(WaitlistEntry)
                .where(WaitlistEntry.id == entry_id, WaitlistEntry.status.in_(allowed_from))
                .values(status=to, closed_at=now if closing else None, updated_at=now)
            ).rowcount
    except IntegrityError:
        raise Conflict(
            "The patient already waits for this service here: edit that entry instead.",
            code="waitlist_conflict",
        ) from None
    db.session.refresh(entry)
    if changed != 1:
        raise Conflict(
            f"This entry is {entry.status.value} now; nothing was changed.", code="entry_changed"
        )
    audit.record(actor, action, entry, after={"status": to})
    return entry


def _withdraw_offers(entry: WaitlistEntry, reason: str, actor: Actor, now: datetime) -> int:
    offers = update_offers(
        sa.and_(Offer.waitlist_entry_id == entry.id, Offer.status == OfferStatus.PENDING),
        status=OfferStatus.WITHDRAWN,
        withdrawn_reason=reason,
        updated_at=now,
    )
    for offer in offers:
        audit.record(actor, Action.OFFER_WITHDRAWN, offer, after={"reason": reason})
    for slot_id in sorted({o.slot_id for o in offers}):
        schedule_fill(slot_id)  # the wave may be empty now: the next one goes
    return len(offers)


def pause_entry(
    entry_id: int, actor: Actor, now: datetime | None = None
) -> tuple[WaitlistEntry, int]:
    """Stop offering to this entry for now; return it and how many offers were withdrawn."""
    now = now or now_utc()
    entry = _set_status(
        entry_id,
        WaitlistStatus.PAUSED,
        (WaitlistStatus.ACTIVE,),
        Action.WAITLIST_PAUSED,
        actor,
        now,
    )
    return entry, _withdraw_offers(entry, "entry_paused", actor, now)


def remove_entry(
    entry_id: int, actor: Actor, now: datetime | None = None
) -> tuple[WaitlistEntry, int]:
    """Take the entry off the waitlist for good; return it and the offers withdrawn."""
    now = now or now_utc()
    entry = _set_status(
        entry_id, WaitlistStatus.CANCELLED, EDITABLE, Action.WAITLIST_REMOVED, actor, now
    )
    return entry, _withdraw_offers(entry, "entry_removed", actor, now)


def resume_entry(entry_id: int, actor: Actor, now: datetime | None = None) -> WaitlistEntry:
    """Offer to a paused (or unreachable) entry again."""
    now = now or now_utc()
    return _set_status(
        entry_id,
        WaitlistStatus.ACTIVE,
        (WaitlistStatus.PAUSED, WaitlistStatus.UNREACHABLE),
        Action.WAITLIST_RESUMED,
        actor,
        now,
    )
