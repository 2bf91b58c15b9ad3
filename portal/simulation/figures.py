"""The figures one policy's run produced, read back from its scratch database."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db
from portal.models import Appointment, Offer, Service, Slot
from portal.models.enums import OfferStatus
from portal.simulation.engine import Tally

#: The keys of ``--json`` (per policy), in table order.
KEYS = (
    "fill_rate",
    "fill_rate_2h",
    "median_minutes_to_fill",
    "p90_minutes_to_fill",
    "acceptance_per_offer",
    "offers_per_fill",
    "max_messages_per_patient_week",
    "revenue_recovered_cents",
)
LABELS = {
    "fill_rate": "filled",
    "fill_rate_2h": "filled ≥2h",
    "median_minutes_to_fill": "median min",
    "p90_minutes_to_fill": "p90 min",
    "acceptance_per_offer": "accept/offer",
    "offers_per_fill": "offers/fill",
    "max_messages_per_patient_week": "max offers/wk",
    "revenue_recovered_cents": "recovered $",
}


def _quantile(values: list[float], q: float) -> float | None:
    """The q-quantile by the nearest-rank method (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def compute(tally: Tally, start: datetime, end: datetime) -> dict[str, float | int | None]:
    """Fill rates, time to fill, offers and revenue for slots released in [start, end)."""
    releases = {
        slot_id: at
        for slot_id, at in tally.releases.items()
        if at is not None and start <= at < end
    }
    slots = {
        s.id: s
        for s in db.session.scalars(sa.select(Slot).where(Slot.id.in_(list(releases))))
        if s.start_at < end
    }
    releases = {k: v for k, v in releases.items() if k in slots}
    filled = db.session.execute(
        sa.select(Appointment.slot_id, Appointment.booked_at, Service.price_cents)
        .join(Slot, Slot.id == Appointment.slot_id)
        .join(Service, Service.id == Slot.service_id)
        .where(Appointment.slot_id.in_(list(releases)), Appointment.offer_id.is_not(None))
    ).all()
    minutes: dict[int, float] = {}
    revenue = 0
    for slot_id, booked_at, price in filled:
        if booked_at >= releases[slot_id] and slot_id not in minutes:
            minutes[slot_id] = (booked_at - releases[slot_id]).total_seconds() / 60
            revenue += price
    ahead = [k for k, at in releases.items() if slots[k].start_at - at >= timedelta(hours=2)]
    offers = db.session.execute(
        sa.select(Offer.patient_id, Offer.status, Offer.created_at).where(
            Offer.created_at >= start, Offer.created_at < end
        )
    ).all()
    accepted = sum(1 for _, status, _ in offers if status == OfferStatus.ACCEPTED)
    return {
        "fill_rate": _ratio(len(minutes), len(releases)),
        "fill_rate_2h": _ratio(sum(1 for k in ahead if k in minutes), len(ahead)),
        "median_minutes_to_fill": _round(_quantile(list(minutes.values()), 0.5)),
        "p90_minutes_to_fill": _round(_quantile(list(minutes.values()), 0.9)),
        "acceptance_per_offer": _ratio(accepted, len(offers)),
        "offers_per_fill": _round(len(offers) / len(minutes)) if minutes else None,
        "max_messages_per_patient_week": _max_per_week(offers, start, end),
        "revenue_recovered_cents": revenue,
    }


def counts(tally: Tally, start: datetime, end: datetime) -> dict[str, int]:
    """How many releases the figures rest on (for the table's footnote)."""
    return {"releases": sum(1 for at in tally.releases.values() if start <= at < end)}


def _max_per_week(offers: list, start: datetime, end: datetime) -> int:
    """The most offers any patient received in any 7-day window (sliding by a day)."""
    by_patient: dict[int, list[datetime]] = defaultdict(list)
    for patient_id, _, created_at in offers:
        by_patient[patient_id].append(created_at)
    most = 0
    day = start
    while day < end:
        window_end = day + timedelta(days=7)
        for times in by_patient.values():
            most = max(most, sum(1 for t in times if day <= t < window_end))
        day += timedelta(days=1)
    return most


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
