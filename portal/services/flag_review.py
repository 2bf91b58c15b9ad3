"""Reviewing patient flags: the list, the patient's history beside one, notes, resolving.

Notes and the resolution are audit events on the flag (append-only), so the flag's
thread is its audit history: who raised it, every note, who resolved it and why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Offer, Patient, PatientFlag, Slot, StaffUser
from portal.models.enums import ActorType, AppointmentStatus, FlagKind
from portal.services.audit import Action, Actor, record
from portal.services.booking import updated_row
from portal.services.errors import Conflict, DomainError, NotFound

MAX_NOTE = 1000
#: The windows the history beside a flag counts over.
HISTORY_WINDOW = timedelta(days=180)
RECENT_CANCELLATIONS = timedelta(days=30)


def flags_query(kind: FlagKind | None = None, *, resolved: bool = False) -> sa.Select:
    """Open (or resolved) flags, newest first, with their patients."""
    query = sa.select(PatientFlag).options(joinedload(PatientFlag.patient))
    query = query.where(
        PatientFlag.resolved_at.is_not(None) if resolved else PatientFlag.resolved_at.is_(None)
    )
    if kind is not None:
        query = query.where(PatientFlag.kind == kind)
    order = PatientFlag.resolved_at.desc() if resolved else PatientFlag.created_at.desc()
    return query.order_by(order, PatientFlag.id.desc())


def open_flag_counts() -> Counter[str]:
    """Open flags per kind."""
    rows = db.session.execute(
        sa.select(PatientFlag.kind, sa.func.count())
        .where(PatientFlag.resolved_at.is_(None))
        .group_by(PatientFlag.kind)
    )
    return Counter({str(kind): n for kind, n in rows})


def get_flag(flag_id: int) -> PatientFlag:
    flag = db.session.get(PatientFlag, flag_id)
    if flag is None:
        raise NotFound("No such flag.", code="unknown_flag")
    return flag


def _clean(note: str) -> str:
    return note.replace("\x00", "").strip()[:MAX_NOTE]


def annotate(flag_id: int, note: str, actor: Actor) -> PatientFlag:
    """Add a note to the flag's thread (audited; the flag stays as it is)."""
    flag = get_flag(flag_id)
    text = _clean(note)
    if not text:
        raise DomainError("Write a note first.", code="note_required")
    record(actor, Action.PATIENT_FLAG_ANNOTATED, flag, after={"note": text})
    return flag


def resolve(flag_id: int, notes: str, actor: Actor, now: datetime | None = None) -> PatientFlag:
    """Mark the flag dealt with, saying how (once: a second resolve is refused)."""
    now = now or now_utc()
    text = _clean(notes)
    if not text:
        raise DomainError("Say how the flag was dealt with.", code="note_required")
    flag = updated_row(
        sa.update(PatientFlag)
        .where(PatientFlag.id == flag_id, PatientFlag.resolved_at.is_(None))
        .values(
            resolved_at=now,
            resolved_by_id=actor.staff_id,
            resolution_notes=text,
            updated_at=now,
        )
        .returning(PatientFlag)
    )
    if flag is None:
        get_flag(flag_id)
        raise Conflict("This flag is already resolved.", code="flag_resolved")
    record(actor, Action.PATIENT_FLAG_RESOLVED, flag, after={"notes": text})
    return flag


@dataclass(frozen=True)
class FlagNote:
    """One entry of a flag's thread."""

    at: datetime
    who: str
    action: str
    text: str


def thread(flag: PatientFlag) -> list[FlagNote]:
    """The flag's audit history as a thread, oldest first."""
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.entity_type == "patient_flag", AuditEvent.entity_id == flag.id)
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    ).all()
    staff_ids = {int(e.actor_id) for e in events if e.actor_type == ActorType.STAFF and e.actor_id}
    names = {
        u.id: u.name
        for u in db.session.scalars(sa.select(StaffUser).where(StaffUser.id.in_(staff_ids)))
    }
    notes = []
    for event in events:
        after = event.after or {}
        who = (
            names.get(int(event.actor_id), "A staff member")
            if event.actor_type == ActorType.STAFF and event.actor_id
            else "The portal"
        )
        text = after.get("note") or after.get("notes") or ""
        if event.action == Action.PATIENT_FLAGGED.value and not text:
            text = flag.notes
        notes.append(FlagNote(event.occurred_at, who, event.action, text))
    return notes


@dataclass
class PatientHistory:
    """What a reviewer reads beside a flag: the patient's record in numbers and rows."""

    no_shows: int = 0
    cancellations: int = 0
    recent_cancellations: int = 0
    completed: int = 0
    offers: Counter[str] = field(default_factory=Counter)
    appointments: list[Appointment] = field(default_factory=list)


def patient_history(patient: Patient, now: datetime | None = None) -> PatientHistory:
    """Counts over the last six months (cancellations also over 30 days), recent visits."""
    now = now or now_utc()
    since, recent = now - HISTORY_WINDOW, now - RECENT_CANCELLATIONS
    history = PatientHistory()
    rows = db.session.execute(
        sa.select(Appointment.status, Appointment.cancelled_at, Slot.start_at)
        .join(Slot, Slot.id == Appointment.slot_id)
        .where(Appointment.patient_id == patient.id, Slot.start_at > since)
    )
    for status, cancelled_at, _start in rows:
        if status == AppointmentStatus.NO_SHOW:
            history.no_shows += 1
        elif status == AppointmentStatus.CANCELLED:
            history.cancellations += 1
            history.recent_cancellations += bool(cancelled_at and cancelled_at > recent)
        elif status == AppointmentStatus.COMPLETED:
            history.completed += 1
    history.offers = Counter(
        {
            str(status): n
            for status, n in db.session.execute(
                sa.select(Offer.status, sa.func.count())
                .where(Offer.patient_id == patient.id, Offer.created_at > since)
                .group_by(Offer.status)
            )
        }
    )
    history.appointments = list(
        db.session.scalars(
            sa.select(Appointment)
            .join(Slot, Slot.id == Appointment.slot_id)
            .where(Appointment.patient_id == patient.id)
            .options(joinedload(Appointment.slot))
            .order_by(Slot.start_at.desc())
            .limit(8)
        )
    )
    return history
