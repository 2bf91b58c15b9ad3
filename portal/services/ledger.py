"""The charge ledger: open a charge, append what became of it, read its status.

Nothing here updates or deletes a row (the database refuses it). A charge's status is
its latest entry; a step is allowed only from the statuses in ``ALLOWED``, read under
the charge's row lock, so two webhooks or a webhook and a member of staff cannot both
move it. Every entry has an idempotency key: appending the same step twice (a
duplicated webhook, a retried job, a double-submitted form) returns the first entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on, insert

from portal.db import db, now_utc
from portal.models import Charge, ChargeEntry
from portal.models.enums import ChargeKind, ChargeStatus, PaymentProviderName
from portal.services.audit import Action, Actor, record
from portal.services.errors import Conflict

#: Which status each step may follow. ``failed`` may still be collected at the desk or
#: waived (a declined card leaves the fee owed); ``succeeded`` can only be refunded.
ALLOWED: dict[ChargeStatus, frozenset[ChargeStatus]] = {
    ChargeStatus.SUCCEEDED: frozenset({ChargeStatus.OWED, ChargeStatus.FAILED}),
    ChargeStatus.FAILED: frozenset({ChargeStatus.OWED}),
    ChargeStatus.WAIVED: frozenset({ChargeStatus.OWED, ChargeStatus.FAILED}),
    ChargeStatus.REFUNDED: frozenset({ChargeStatus.SUCCEEDED}),
}
#: Statuses in which the money is still due from the patient.
DUE = frozenset({ChargeStatus.OWED, ChargeStatus.FAILED})

_ACTIONS = {
    ChargeStatus.SUCCEEDED: Action.CHARGE_SUCCEEDED,
    ChargeStatus.FAILED: Action.CHARGE_FAILED,
    ChargeStatus.WAIVED: Action.CHARGE_WAIVED,
    ChargeStatus.REFUNDED: Action.CHARGE_REFUNDED,
}


class ChargeStepRefused(Conflict):
    default_code = "charge_state"


@dataclass(frozen=True)
class Step:
    """An appended entry, and whether this call appended it (False: it already was)."""

    entry: ChargeEntry
    new: bool


def open_charge(
    *,
    patient_id: int,
    kind: ChargeKind,
    amount_cents: int,
    key: str,
    description: str,
    actor: Actor,
    appointment_id: int | None = None,
    offer_id: int | None = None,
    duplicate_of_id: int | None = None,
    now: datetime | None = None,
) -> Charge:
    """Open a charge with its ``owed`` entry, or return the one ``key`` already opened."""
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise ValueError(f"a charge is a positive number of cents, not {amount_cents!r}")
    now = now or now_utc()
    charge_id = db.session.scalar(
        insert(Charge)
        .values(
            patient_id=patient_id,
            kind=kind,
            amount_cents=amount_cents,
            idempotency_key=key,
            description=description[:200],
            appointment_id=appointment_id,
            offer_id=offer_id,
            duplicate_of_id=duplicate_of_id,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Charge.idempotency_key])
        .returning(Charge.id)
    )
    if charge_id is None:
        return db.session.scalars(sa.select(Charge).where(Charge.idempotency_key == key)).one()
    charge = db.session.get(Charge, charge_id)
    db.session.add(
        ChargeEntry(
            charge_id=charge_id,
            status=ChargeStatus.OWED,
            amount_cents=amount_cents,
            provider=PaymentProviderName.SYSTEM,
            idempotency_key=f"{key}:owed",
            created_at=now,
        )
    )
    db.session.flush()
    record(actor, Action.CHARGE_OPENED, charge, after={"kind": kind, "amount_cents": amount_cents})
    return charge


def append(
    charge_id: int,
    status: ChargeStatus,
    *,
    key: str,
    actor: Actor,
    provider: PaymentProviderName,
    provider_ref: str | None = None,
    note: str = "",
    amount_cents: int | None = None,
    now: datetime | None = None,
) -> Step:
    """Append a step to a charge (idempotent on ``key``); refuse one its status forbids."""
    now = now or now_utc()
    existing = db.session.scalar(sa.select(ChargeEntry).where(ChargeEntry.idempotency_key == key))
    if existing is not None:
        return Step(existing, new=False)
    # FOR NO KEY UPDATE: serializes the charge's steps, yet leaves alone whoever only
    # references the charge (a second payment's charge points at it): FOR UPDATE waited
    # for them, and with the patient row taken in the other order that deadlocked.
    charge = db.session.scalars(
        sa.select(Charge).where(Charge.id == charge_id).with_for_update(key_share=True)
    ).one()
    existing = db.session.scalar(sa.select(ChargeEntry).where(ChargeEntry.idempotency_key == key))
    if existing is not None:  # appended while we waited for the lock
        return Step(existing, new=False)
    current = status_of(charge.id)
    if current not in ALLOWED[status]:
        raise ChargeStepRefused(f"A {current.value} charge cannot become {status.value}.")
    entry = ChargeEntry(
        charge_id=charge.id,
        status=status,
        amount_cents=charge.amount_cents if amount_cents is None else amount_cents,
        provider=provider,
        provider_ref=provider_ref,
        idempotency_key=key,
        note=note[:200],
        recorded_by_id=actor.staff_id,
        created_at=now,
    )
    db.session.add(entry)
    db.session.flush()
    record(
        actor,
        _ACTIONS[status],
        charge,
        before={"status": current},
        after={"status": status, "provider": provider, "ref": provider_ref},
    )
    return Step(entry, new=True)


def status_of(charge_id: int) -> ChargeStatus:
    """The charge's status: its latest entry's."""
    return db.session.scalars(
        sa.select(ChargeEntry.status)
        .where(ChargeEntry.charge_id == charge_id)
        .order_by(ChargeEntry.id.desc())
        .limit(1)
    ).one()


def statuses(charge_ids: list[int]) -> dict[int, ChargeStatus]:
    """The status of each charge, in one query."""
    if not charge_ids:
        return {}
    rows = db.session.execute(
        sa.select(ChargeEntry.charge_id, ChargeEntry.status)
        .where(ChargeEntry.charge_id.in_(charge_ids))
        .ext(distinct_on(ChargeEntry.charge_id))
        .order_by(ChargeEntry.charge_id, ChargeEntry.id.desc())
    )
    return {charge_id: status for charge_id, status in rows}


def hold_charge(offer_id: int) -> Charge | None:
    """The deposit or prepayment a held offer is waiting for, while it is still owed."""
    charge = db.session.scalar(
        sa.select(Charge).where(Charge.offer_id == offer_id).order_by(Charge.id.desc()).limit(1)
    )
    if charge is None or status_of(charge.id) != ChargeStatus.OWED:
        return None
    return charge


def charges_for_patient(patient_id: int) -> list[tuple[Charge, ChargeStatus]]:
    """A patient's charges, newest first, with their statuses."""
    charges = list(
        db.session.scalars(
            sa.select(Charge).where(Charge.patient_id == patient_id).order_by(Charge.id.desc())
        )
    )
    current = statuses([c.id for c in charges])
    return [(c, current[c.id]) for c in charges]


def entries(charge_id: int) -> list[ChargeEntry]:
    """A charge's history, oldest first."""
    return list(
        db.session.scalars(
            sa.select(ChargeEntry)
            .where(ChargeEntry.charge_id == charge_id)
            .order_by(ChargeEntry.id)
        )
    )
