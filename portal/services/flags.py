"""Patient flags for staff review, and what raises them (SPEC §2, §4, §5).

A flag kind is open at most once per patient (a partial unique index), so raising one
twice is harmless. Staff review and resolve them (the flags page).
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal.db import db
from portal.models import Patient, PatientFlag, WaitlistEntry
from portal.models.enums import FlagKind, WaitlistStatus
from portal.services.audit import SYSTEM, Action, Actor, record

log = logging.getLogger(__name__)


def mark_unreachable(patient: Patient, now: datetime) -> None:
    """Every channel failed: the patient's active entries pause and a flag is raised."""
    entry_ids = db.session.scalars(
        sa.update(WaitlistEntry)
        .where(
            WaitlistEntry.patient_id == patient.id, WaitlistEntry.status == WaitlistStatus.ACTIVE
        )
        .values(status=WaitlistStatus.UNREACHABLE, updated_at=now)
        .returning(WaitlistEntry.id)
    ).all()
    for entry_id in entry_ids:
        entry = db.session.get(WaitlistEntry, entry_id)
        record(SYSTEM, Action.WAITLIST_UNREACHABLE, entry, after={"status": "unreachable"})
    raise_flag(patient, FlagKind.UNREACHABLE, "No channel reached the patient; see the timeline.")


def flag_invalid_phone(patient: Patient, notes: str) -> None:
    """The number cannot be texted or called: staff should ask for a new one."""
    raise_flag(patient, FlagKind.INVALID_PHONE, notes)


def raise_flag(patient: Patient, kind: FlagKind, notes: str, actor: Actor = SYSTEM) -> None:
    """Open a flag of ``kind`` unless one is already open (a partial unique index)."""
    flag_id = db.session.scalar(
        insert(PatientFlag)
        .values(patient_id=patient.id, kind=kind, notes=notes)
        .on_conflict_do_nothing(
            index_elements=[PatientFlag.patient_id, PatientFlag.kind],
            index_where=PatientFlag.resolved_at.is_(None),
        )
        .returning(PatientFlag.id)
    )
    if flag_id is not None:
        log.info("patient %s flagged %s", patient.id, kind.value)
        record(
            actor,
            Action.PATIENT_FLAGGED,
            db.session.get(PatientFlag, flag_id),
            after={"kind": kind},
        )
