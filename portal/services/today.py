"""The staff home page: what to do next, most urgent first.

Outreach calls due (overdue first), open slots today and tomorrow at each location with
how filling stands and why it stopped, new patient flags, and holds waiting for payment.
Each list is one or two queries; the navigation's counts come from ``nav_counts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.db import db, now_utc
from portal.models import Charge, Location, Offer, OutreachTask, PatientFlag, Slot
from portal.models.enums import SlotStatus
from portal.services import dayview, ledger, outreach, staffops
from portal.services.dayview import DaySlot
from portal.services.timezones import local_day_bounds

LIST_LIMIT = 8


@dataclass
class OpenSlots:
    """One location's open slots from now to the end of its local tomorrow."""

    location: Location
    today: date
    rows: list[DaySlot]
    extras: dict[int, staffops.RowExtras]


@dataclass(frozen=True)
class Hold:
    """A slot held while a patient pays a deposit or prepayment."""

    slot: Slot
    offer: Offer
    charge: Charge | None


@dataclass
class Today:
    tasks: list[OutreachTask]
    task_counts: outreach.QueueCounts
    open_slots: list[OpenSlots] = field(default_factory=list)
    flags: list[PatientFlag] = field(default_factory=list)
    open_flags: int = 0
    holds: list[Hold] = field(default_factory=list)

    @property
    def open_slot_count(self) -> int:
        return sum(len(group.rows) for group in self.open_slots)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.tasks or self.open_slot_count or self.flags or self.holds)


def open_slots_soon(now: datetime) -> list[OpenSlots]:
    """Each location's open slots still ahead today and tomorrow (its own local days)."""
    groups = []
    for location in db.session.scalars(sa.select(Location).order_by(Location.name, Location.id)):
        today = dayview.local_today(location.timezone, now)
        end = local_day_bounds(today + timedelta(days=1), location.timezone)[1]
        rows = dayview.open_slots_between(location, now, end)
        if rows:
            groups.append(OpenSlots(location, today, rows, staffops.row_extras(rows, now)))
    return groups


def holds_waiting(now: datetime) -> list[Hold]:
    """Live holds, the soonest to lapse first, with the charge each waits for."""
    slots = db.session.scalars(
        sa.select(Slot)
        .where(Slot.status == SlotStatus.HELD, Slot.hold_expires_at > now)
        .options(joinedload(Slot.location), joinedload(Slot.service))
        .order_by(Slot.hold_expires_at)
    ).all()
    holds = []
    for slot in slots:
        offer = db.session.get(Offer, slot.hold_offer_id)
        if offer is None:
            continue
        holds.append(Hold(slot, offer, ledger.hold_charge(offer.id)))
    return holds


def today(now: datetime | None = None) -> Today:
    """Everything the home page lists."""
    now = now or now_utc()
    tasks = [
        t
        for t in outreach.open_tasks(now, limit=LIST_LIMIT * 2)
        if t.retry_at is None or t.retry_at <= now
    ][:LIST_LIMIT]
    flags = db.session.scalars(
        sa.select(PatientFlag)
        .where(PatientFlag.resolved_at.is_(None))
        .options(joinedload(PatientFlag.patient))
        .order_by(PatientFlag.created_at.desc(), PatientFlag.id.desc())
        .limit(LIST_LIMIT)
    ).all()
    return Today(
        tasks=tasks,
        task_counts=outreach.queue_counts(now),
        open_slots=open_slots_soon(now),
        flags=list(flags),
        open_flags=dayview.attention_counts().open_patient_flags,
        holds=holds_waiting(now),
    )


@dataclass(frozen=True)
class NavCount:
    """A number beside a navigation entry, with what it counts (read by screen readers)."""

    value: int
    label: str
    urgent: bool = False


def nav_counts(now: datetime | None = None) -> dict[str, NavCount]:
    """Counts shown in the staff navigation, by endpoint (two small queries)."""
    now = now or now_utc()
    tasks = outreach.queue_counts(now)
    flags = dayview.attention_counts().open_patient_flags
    counts = {}
    if tasks.due:
        label = f"{tasks.due} due" + (f", {tasks.overdue} overdue" if tasks.overdue else "")
        counts["staff.outreach"] = NavCount(tasks.due, label, urgent=tasks.overdue > 0)
    if flags:
        counts["staff.flags"] = NavCount(flags, f"{flags} open")
    return counts
