"""Joining the waitlist: one active entry per patient, service and location (SPEC §3.7)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from portal.db import db
from portal.models import Location, Patient, Practitioner, Service, WaitlistEntry
from portal.models.enums import WaitlistStatus
from portal.services import audit
from portal.services.audit import Action, Actor
from portal.services.errors import Conflict, DomainError

MAX_WINDOWS = 50
MAX_PRIORITY = 1000
#: Sane bounds: date arithmetic near year 1 or 9999 overflows in matching.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2199, 12, 31)
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_WINDOW_KEYS = frozenset({"weekday", "start", "end"})
#: Fields a re-join replaces; also the audit snapshot (no patient data among them).
PREFERENCE_FIELDS = (
    "preferred_practitioner_id",
    "earliest",
    "latest",
    "windows",
    "preferred_time",
    "short_notice_ok",
    "priority",
)


def _invalid_windows(message: str, index: int | None = None) -> DomainError:
    details = {"index": index} if index is not None else None
    return DomainError(message, code="invalid_windows", details=details)


def parse_windows(raw: Any) -> list[dict[str, Any]]:
    """Validate weekly windows ``[{weekday 0-6 (Mon=0), start "HH:MM", end "HH:MM"}]``.

    Return them normalised and sorted; ``None`` means any time (an empty list).
    """
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise _invalid_windows("Windows must be a list.")
    if len(raw) > MAX_WINDOWS:
        raise _invalid_windows(f"Give at most {MAX_WINDOWS} windows.")
    windows: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != _WINDOW_KEYS:
            raise _invalid_windows("Each window needs exactly weekday, start and end.", i)
        weekday, start, end = item["weekday"], item["start"], item["end"]
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise _invalid_windows("weekday must be 0 (Monday) to 6 (Sunday).", i)
        for value in (start, end):
            if not isinstance(value, str) or not _HHMM.fullmatch(value):
                raise _invalid_windows("start and end must be HH:MM (00:00-23:59).", i)
        if start >= end:
            raise _invalid_windows("A window must start before it ends.", i)
        windows.append({"weekday": weekday, "start": start, "end": end})
    unique = {(w["weekday"], w["start"], w["end"]): w for w in windows}
    return [unique[key] for key in sorted(unique)]


def default_location(patient: Patient) -> Location | None:
    """Return where a patient waits when no location is named: home, or the only one."""
    if patient.home_location_id is not None:
        return db.session.get(Location, patient.home_location_id)
    only_two = db.session.scalars(sa.select(Location).order_by(Location.id).limit(2)).all()
    return only_two[0] if len(only_two) == 1 else None


def check_preferences(
    service: Service,
    location: Location,
    practitioner: Practitioner | None,
    earliest: date | None,
    latest: date | None,
    priority: int | None,
) -> None:
    """Refuse preferences that cannot be met (inactive service, foreign practitioner, …)."""
    if not service.active:
        raise DomainError("That service is no longer offered.", code="inactive_service")
    if practitioner is not None and (
        practitioner.location_id != location.id or not practitioner.active
    ):
        raise DomainError(
            "The preferred practitioner does not work at that location.",
            code="invalid_practitioner",
        )
    for day in (earliest, latest):
        if day is not None and not EARLIEST_DATE <= day <= LATEST_DATE:
            raise DomainError(
                f"Dates must lie between {EARLIEST_DATE} and {LATEST_DATE}.",
                code="invalid_date_range",
            )
    if earliest is not None and latest is not None and earliest > latest:
        raise DomainError("earliest must not be after latest.", code="invalid_date_range")
    if priority is not None and abs(priority) > MAX_PRIORITY:
        raise DomainError(
            f"priority must be between -{MAX_PRIORITY} and {MAX_PRIORITY}.",
            code="invalid_priority",
        )


def _active_entry(patient: Patient, service: Service, location: Location) -> WaitlistEntry | None:
    return db.session.scalars(
        sa.select(WaitlistEntry)
        .where(
            WaitlistEntry.patient_id == patient.id,
            WaitlistEntry.service_id == service.id,
            WaitlistEntry.location_id == location.id,
            WaitlistEntry.status == WaitlistStatus.ACTIVE,
        )
        .with_for_update()
    ).first()


def _insert_if_absent(values: dict[str, Any]) -> int | None:
    """Insert an active entry unless one exists; waits for a concurrent insert to settle."""
    stmt = (
        pg_insert(WaitlistEntry)
        .values(**values, status=WaitlistStatus.ACTIVE)
        .on_conflict_do_nothing(
            index_elements=["patient_id", "service_id", "location_id"],
            index_where=sa.text("status = 'active'"),
        )
        .returning(WaitlistEntry.id)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def _snapshot(entry: WaitlistEntry, fields: Iterable[str] = PREFERENCE_FIELDS) -> dict[str, Any]:
    return audit.snapshot(entry, *fields)


def join_waitlist(
    *,
    patient: Patient,
    service: Service,
    location: Location,
    preferred_practitioner: Practitioner | None = None,
    earliest: date | None = None,
    latest: date | None = None,
    windows: Any = None,
    preferred_time: time | None = None,
    short_notice_ok: bool = False,
    priority: int | None = None,
    actor: Actor,
) -> tuple[WaitlistEntry, bool]:
    """Add the patient to the waitlist, or update their active entry; return (entry, created).

    Re-joining replaces the preferences but keeps the entry (and the time waited).
    ``priority`` None keeps the current one (0 for a new entry).
    """
    check_preferences(service, location, preferred_practitioner, earliest, latest, priority)
    prefs: dict[str, Any] = {
        "preferred_practitioner_id": preferred_practitioner.id if preferred_practitioner else None,
        "earliest": earliest,
        "latest": latest,
        "windows": parse_windows(windows),
        "preferred_time": preferred_time,
        "short_notice_ok": bool(short_notice_ok),
    }
    if priority is not None:
        prefs["priority"] = priority
    # Existing entry first (locked); else insert; a concurrent insert makes ours a no-op
    # and the next round finds and updates it. Bounded: an entry closing in between is rare.
    for _ in range(3):
        entry = _active_entry(patient, service, location)
        if entry is not None:
            before = _snapshot(entry)
            for key, value in prefs.items():
                setattr(entry, key, value)
            db.session.flush()
            audit.record(
                actor, Action.WAITLIST_UPDATED, entry, before=before, after=_snapshot(entry)
            )
            return entry, False
        keys = {"patient_id": patient.id, "service_id": service.id, "location_id": location.id}
        new_id = _insert_if_absent({"priority": 0, **prefs, **keys})
        if new_id is not None:
            entry = db.session.get_one(WaitlistEntry, new_id)
            after = _snapshot(entry, ("service_id", "location_id", *PREFERENCE_FIELDS))
            audit.record(actor, Action.WAITLIST_JOINED, entry, after=after)
            return entry, True
    raise Conflict(
        "The waitlist entry changed while joining; please retry.", code="waitlist_conflict"
    )


def still_waitlisted(patient_id: int, entry_id: int | None = None) -> bool:
    """Whether the patient is still waiting: that entry is active, or (without one) any is.

    Messages say "you're still on the waitlist" only when this is true.
    """
    query = sa.select(WaitlistEntry.id).where(
        WaitlistEntry.patient_id == patient_id, WaitlistEntry.status == WaitlistStatus.ACTIVE
    )
    if entry_id is not None:
        query = query.where(WaitlistEntry.id == entry_id)
    return db.session.scalar(query.limit(1)) is not None
