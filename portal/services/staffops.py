"""What staff see and do around one slot: filling state, offers by wave, patient search.

The reads feed the day view and the slot panel; ``restart_filling`` is the one small
state change here (booking, releasing and holds live in ``booking`` and ``filling``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.db import db, now_utc
from portal.models import Appointment, Charge, Offer, Patient, Slot
from portal.models.enums import OfferStatus, SlotStatus
from portal.services import ledger
from portal.services.appointments import active_appointment
from portal.services.audit import Action, Actor, record, snapshot
from portal.services.dayview import DaySlot
from portal.services.errors import Conflict
from portal.services.filling import schedule_fill

#: Patient search: shortest useful query, longest one read, most rows returned.
SEARCH_MIN_CHARS = 2
SEARCH_MAX_CHARS = 100
SEARCH_LIMIT = 20


@dataclass(frozen=True)
class FillState:
    """Where filling an open slot stands: the latest wave and its live offers."""

    wave: int
    pending: int
    expires_at: datetime | None
    exhausted: bool

    @property
    def started(self) -> bool:
        return self.wave > 0


@dataclass(frozen=True)
class RowExtras:
    """What the day view shows beyond ``dayview.DaySlot``: price and filling state."""

    price_cents: int
    fill: FillState


@dataclass
class SlotPanel:
    """Everything the slot panel shows about one slot."""

    slot: Slot
    fill: FillState
    waves: list[tuple[int, list[Offer]]] = field(default_factory=list)
    appointment: Appointment | None = None
    hold_offer: Offer | None = None
    hold_charge: Charge | None = None


def _live_offer_counts(slot_ids: list[int], now: datetime) -> dict[int, tuple[int, datetime]]:
    rows = db.session.execute(
        sa.select(Offer.slot_id, sa.func.count(), sa.func.max(Offer.window_expires_at))
        .where(
            Offer.slot_id.in_(slot_ids),
            Offer.status == OfferStatus.PENDING,
            Offer.window_expires_at > now,
        )
        .group_by(Offer.slot_id)
    )
    return {slot_id: (count, expires) for slot_id, count, expires in rows}


def row_extras(rows: list[DaySlot], now: datetime | None = None) -> dict[int, RowExtras]:
    """Return price and filling state for each of the day view's rows, by slot id."""
    if not rows:
        return {}
    live = _live_offer_counts([r.slot_id for r in rows], now or now_utc())
    return {
        r.slot_id: RowExtras(
            r.price_cents,
            FillState(r.current_wave, *live.get(r.slot_id, (0, None)), r.fill_exhausted),
        )
        for r in rows
    }


def slot_panel(slot: Slot, now: datetime | None = None) -> SlotPanel:
    """Return the slot with its offers (newest wave first), live booking and hold."""
    now = now or now_utc()
    offers = db.session.scalars(
        sa.select(Offer)
        .where(Offer.slot_id == slot.id)
        .options(joinedload(Offer.patient))
        .order_by(Offer.wave.desc(), Offer.score.desc(), Offer.id)
    ).all()
    waves = [(wave, list(group)) for wave, group in groupby(offers, key=lambda o: o.wave)]
    live = [o for o in offers if o.status == OfferStatus.PENDING and o.window_expires_at > now]
    fill = FillState(
        slot.current_wave,
        len(live),
        max((o.window_expires_at for o in live), default=None),
        slot.fill_exhausted_at is not None,
    )
    panel = SlotPanel(slot, fill, waves, appointment=active_appointment(slot.id))
    if slot.status == SlotStatus.HELD and slot.hold_offer_id is not None:
        panel.hold_offer = db.session.get(Offer, slot.hold_offer_id)
        panel.hold_charge = ledger.hold_charge(slot.hold_offer_id)
    return panel


def search_patients(query: str, limit: int = SEARCH_LIMIT) -> list[Patient]:
    """Return patients whose name, email or phone contains ``query`` (case-insensitive)."""
    # PostgreSQL rejects NUL in text; anything else is matched literally (autoescape).
    text = query.replace("\x00", "").strip()[:SEARCH_MAX_CHARS]
    if len(text) < SEARCH_MIN_CHARS:
        return []
    matches = [Patient.name.icontains(text, autoescape=True)]
    matches.append(Patient.email.icontains(text, autoescape=True))
    digits = re.sub(r"\D", "", text)
    if len(digits) >= SEARCH_MIN_CHARS:
        matches.append(Patient.phone_e164.contains(digits, autoescape=True))
    return list(
        db.session.scalars(
            sa.select(Patient)
            .where(sa.or_(*matches))
            .order_by(Patient.name, Patient.id)
            .limit(limit)
        )
    )


def restart_filling(slot: Slot, actor: Actor, now: datetime | None = None) -> None:
    """Ask the waitlist again for an open slot whose filling stopped with nobody left."""
    now = now or now_utc()
    before = snapshot(slot, "fill_exhausted_at")
    restarted = db.session.execute(
        sa.update(Slot)
        .where(
            Slot.id == slot.id,
            Slot.status == SlotStatus.OPEN,
            Slot.fill_exhausted_at.is_not(None),
            Slot.start_at > now,
        )
        .values(fill_exhausted_at=None, updated_at=now)
    ).rowcount
    db.session.refresh(slot)
    if restarted != 1:
        if slot.status != SlotStatus.OPEN:
            raise Conflict("Only an open slot can be offered again.", code="slot_not_open")
        if slot.start_at <= now:
            raise Conflict("This slot has already started.", code="slot_started")
        raise Conflict("This slot is already being offered.", code="already_filling")
    record(
        actor, Action.SLOT_FILLING_RESTARTED, slot, before=before, after={"fill_exhausted_at": None}
    )
    schedule_fill(slot.id)
