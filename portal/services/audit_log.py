"""Reading the audit trail: filters, keyset pages, who-did-it labels, CSV rows.

The log is read newest first by ``(occurred_at, id)``; every index on ``audit_event``
ends in those two columns (migration 0400), so a page costs one index range scan of
``limit`` rows whichever filter leads, at any depth (no OFFSET).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.db import db
from portal.models import AuditEvent, Location, Patient, StaffUser
from portal.models.enums import ActorType
from portal.services.audit import Action
from portal.services.timezones import local_day_bounds

#: What an entity type is called on the page, in the order the filter lists them.
ENTITY_LABELS = {
    "slot": "Slot",
    "appointment": "Appointment",
    "offer": "Offer",
    "patient": "Patient",
    "charge": "Charge",
    "setting": "Setting",
    "staff_user": "Staff user",
    "waitlist_entry": "Waitlist entry",
    "notification": "Message",
    "outreach_task": "Outreach task",
    "patient_flag": "Flag",
    "reminder": "Reminder",
    "closure": "Closure",
    "cancellation_policy": "Cancellation policy",
    "offer_policy": "Offer policy",
    "location": "Location",
    "practitioner": "Practitioner",
    "service": "Service",
    "api_token": "API token",
}

#: Entities about patients and their bookings: what non-admin staff may read. Staff see
#: every patient, so this is their whole share of the log; accounts, settings, policies,
#: the catalogue and API tokens are for admins.
PATIENT_ENTITIES = frozenset(
    {
        "slot",
        "appointment",
        "offer",
        "patient",
        "charge",
        "waitlist_entry",
        "notification",
        "outreach_task",
        "patient_flag",
        "reminder",
    }
)

ACTOR_LABELS = {
    ActorType.STAFF: "Staff user",
    ActorType.PATIENT: "Patient",
    ActorType.SYSTEM: "System",
    ActorType.WEBHOOK: "Webhook",
    ActorType.API: "API",
}

PAGE_SIZE = 50
_CURSOR = re.compile(r"^(\d{10,17})_(\d{1,18})$")  # microseconds since the epoch, id


@dataclass(frozen=True)
class AuditFilter:
    """What the reader asked for; every field optional. Dates are local to ``zone``."""

    entity_type: str | None = None
    entity_id: int | None = None
    actor_type: ActorType | None = None
    actor_id: str | None = None
    action: Action | None = None
    date_from: date | None = None
    date_to: date | None = None
    zone: str = "UTC"

    def as_params(self) -> dict[str, str]:
        """The filter as query-string parameters (for links and the CSV export)."""
        params = {
            "entity": self.entity_type,
            "entity_id": self.entity_id,
            "actor": self.actor_type.value if self.actor_type else None,
            "actor_id": self.actor_id,
            "action": self.action.value if self.action else None,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
        }
        return {k: str(v) for k, v in params.items() if v not in (None, "")}


def parse_filter(args: Any, zone: str) -> tuple[AuditFilter, list[str]]:
    """Read a filter from query parameters; anything unreadable is dropped and explained."""
    problems: list[str] = []
    entity = _clean(args.get("entity"))
    if entity and entity not in ENTITY_LABELS:
        problems.append("Unknown entity type; showing all.")
        entity = None
    entity_id = _int(args.get("entity_id"), problems, "Entity id")
    actor_raw = _clean(args.get("actor"))
    actor_type = None
    if actor_raw:
        try:
            actor_type = ActorType(actor_raw)
        except ValueError:
            problems.append("Unknown kind of actor; showing all.")
    actor_id = _clean(args.get("actor_id"))[:64] or None
    action_raw = _clean(args.get("action"))
    action = None
    if action_raw:
        try:
            action = Action(action_raw)
        except ValueError:
            problems.append("Unknown action; showing all.")
    date_from = parse_day(args.get("from"), problems, _BAD_DATE.format(label="From"))
    date_to = parse_day(args.get("to"), problems, _BAD_DATE.format(label="To"))
    if date_from and date_to and date_from > date_to:
        problems.append("The range ends before it starts; the dates were swapped.")
        date_from, date_to = date_to, date_from
    found = AuditFilter(entity, entity_id, actor_type, actor_id, action, date_from, date_to, zone)
    return found, problems


def _clean(raw: str | None) -> str:
    return (raw or "").replace("\x00", "").strip()


def _int(raw: str | None, problems: list[str], label: str) -> int | None:
    text = _clean(raw)
    if not text:
        return None
    if text.isdigit() and 0 < int(text) < 2**31:
        return int(text)
    problems.append(f"{label} must be a whole number; ignored.")
    return None


_BAD_DATE = "{label} date must look like 2026-11-30; ignored."


def parse_day(raw: str | None, problems: list[str], problem: str) -> date | None:
    """A filter's ISO date (years 2000–2100), or None with ``problem`` noted when it is not."""
    text = (raw or "").strip()  # a NUL byte makes it no date: named, not dropped silently
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or not 2000 <= day.year <= 2100:
        problems.append(problem)
        return None
    return day


def clinic_zone() -> str:
    """The zone the log's dates are read in: the practice's first location's (else UTC)."""
    found = db.session.scalar(sa.select(Location.timezone).order_by(Location.id).limit(1))
    return found or "UTC"


def scoped(wanted: AuditFilter, *, is_admin: bool) -> sa.Select:
    """The events ``wanted`` names that the reader may see, newest first."""
    q = sa.select(AuditEvent)
    if not is_admin:
        q = q.where(AuditEvent.entity_type.in_(sorted(PATIENT_ENTITIES)))
    if wanted.entity_type:
        q = q.where(AuditEvent.entity_type == wanted.entity_type)
    if wanted.entity_id is not None:
        q = q.where(AuditEvent.entity_id == wanted.entity_id)
    if wanted.actor_type:
        q = q.where(AuditEvent.actor_type == wanted.actor_type)
    if wanted.actor_id:
        q = q.where(AuditEvent.actor_id == wanted.actor_id)
    if wanted.action:
        q = q.where(AuditEvent.action == wanted.action.value)
    if wanted.date_from:
        q = q.where(AuditEvent.occurred_at >= local_day_bounds(wanted.date_from, wanted.zone)[0])
    if wanted.date_to:
        q = q.where(AuditEvent.occurred_at < local_day_bounds(wanted.date_to, wanted.zone)[1])
    return q.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())


def encode_cursor(event: AuditEvent) -> str:
    """A page boundary: the last row's (occurred_at, id), opaque to readers."""
    micros = (event.occurred_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return f"{micros}_{event.id}"


def decode_cursor(raw: str | None) -> tuple[datetime, int] | None:
    """The (occurred_at, id) a cursor names, or None when it is absent or malformed."""
    match = _CURSOR.match(_clean(raw))
    if not match:
        return None
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(match.group(1)))
    return instant, int(match.group(2))


@dataclass
class Page:
    events: list[AuditEvent]
    next_cursor: str | None
    actors: dict[tuple[str, str | None], str] = field(default_factory=dict)


def page(
    wanted: AuditFilter, *, is_admin: bool, after: str | None = None, size: int = PAGE_SIZE
) -> Page:
    """One page of events older than the cursor ``after`` (the first page without one)."""
    q = scoped(wanted, is_admin=is_admin)
    boundary = decode_cursor(after)
    if boundary is not None:
        q = q.where(sa.tuple_(AuditEvent.occurred_at, AuditEvent.id) < sa.tuple_(*boundary))
    rows = list(db.session.scalars(q.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, encode_cursor(rows[-1]) if more else None, actor_names(rows))


def actor_names(events: list[AuditEvent]) -> dict[tuple[str, str | None], str]:
    """Who each event's actor is, in words, loaded with two queries for the whole page."""
    staff_ids = {int(e.actor_id) for e in events if _is_id(e, ActorType.STAFF)}
    patient_ids = {int(e.actor_id) for e in events if _is_id(e, ActorType.PATIENT)}
    staff: dict[int, str] = dict(
        db.session.execute(
            sa.select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(staff_ids))
        ).all()
        if staff_ids
        else []
    )
    patients: dict[int, str] = dict(
        db.session.execute(
            sa.select(Patient.id, Patient.name).where(Patient.id.in_(patient_ids))
        ).all()
        if patient_ids
        else []
    )
    names: dict[tuple[str, str | None], str] = {}
    for e in events:
        key = (str(e.actor_type), e.actor_id)
        if _is_id(e, ActorType.STAFF):
            names[key] = staff.get(int(e.actor_id or 0), f"Staff user {e.actor_id}")
        elif _is_id(e, ActorType.PATIENT):
            names[key] = patients.get(int(e.actor_id or 0), f"Patient {e.actor_id}")
        elif e.actor_type == ActorType.WEBHOOK:
            names[key] = f"Webhook ({e.actor_id})" if e.actor_id else "Webhook"
        elif e.actor_type == ActorType.API:
            names[key] = f"API token {e.actor_id}" if e.actor_id else "API"
        else:
            names[key] = "System"
    return names


def _is_id(event: AuditEvent, kind: ActorType) -> bool:
    return event.actor_type == kind and bool(event.actor_id) and event.actor_id.isdigit()


@dataclass(frozen=True)
class Change:
    key: str
    before: Any
    after: Any


def changes(event: AuditEvent) -> list[Change]:
    """The fields the event touched, before → after (a field only on one side shows '—')."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    keys = list(dict.fromkeys([*before, *after]))
    return [
        Change(k, before.get(k), after.get(k))
        for k in keys
        if k not in before or k not in after or before[k] != after[k]
    ]


def action_label(action: str) -> str:
    """``offer.accepted`` → ``Offer accepted``."""
    words = action.replace(".", " ").replace("_", " ")
    return words[:1].upper() + words[1:]


CSV_HEADER = (
    "id",
    "occurred_at_utc",
    "occurred_at_local",
    "actor_type",
    "actor_id",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "before",
    "after",
)


def export_rows(wanted: AuditFilter, *, is_admin: bool, batch: int = 2000) -> Iterator[list[Any]]:
    """Every event the filter names, newest first, as CSV rows — read in keyset batches.

    Batches keep memory flat at a million rows and never hold a cursor open across the
    response; each batch names its actors with two queries.
    """
    zone = ZoneInfo(wanted.zone)
    cursor: str | None = None
    while True:
        chunk = page(wanted, is_admin=is_admin, after=cursor, size=batch)
        for e in chunk.events:
            yield [
                e.id,
                e.occurred_at.astimezone(UTC).isoformat(),
                e.occurred_at.astimezone(zone).isoformat(),
                str(e.actor_type),
                e.actor_id or "",
                chunk.actors.get((str(e.actor_type), e.actor_id), ""),
                e.action,
                e.entity_type,
                e.entity_id if e.entity_id is not None else "",
                json.dumps(e.before, sort_keys=True) if e.before is not None else "",
                json.dumps(e.after, sort_keys=True) if e.after is not None else "",
            ]
        if chunk.next_cursor is None:
            return
        cursor = chunk.next_cursor
        db.session.expunge_all()  # a long export must not keep every row it read
