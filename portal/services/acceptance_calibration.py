"""How well the learned acceptance estimate matches what patients then did.

Answered offers (accepted, declined, expired) that carry the estimate made when they
were sent are split into ten equal groups by that estimate (``ntile`` in PostgreSQL,
one query); each group's mean prediction is set beside the share that was accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from portal.db import db
from portal.models import Offer
from portal.models.enums import OfferStatus
from portal.services.learning import ANSWERED, HISTORY

#: Below this many answered offers with an estimate, deciles say nothing yet.
MIN_OFFERS = 100


@dataclass(frozen=True)
class Decile:
    """One tenth of the answered offers, by predicted acceptance."""

    decile: int
    offers: int
    predicted: float
    observed: float

    @property
    def gap(self) -> float:
        return self.observed - self.predicted


@dataclass(frozen=True)
class Calibration:
    offers: int
    deciles: list[Decile]
    brier: float | None  # mean squared error of the predictions (lower is better)

    @property
    def enough(self) -> bool:
        return self.offers >= MIN_OFFERS


def calibration(now: datetime) -> Calibration:
    """Predicted against observed acceptance by decile, over the last 180 days."""
    accepted = sa.case((Offer.status == OfferStatus.ACCEPTED, 1.0), else_=0.0)
    answered = (
        sa.select(
            Offer.predicted_acceptance.label("predicted"),
            accepted.label("accepted"),
            sa.func.ntile(10).over(order_by=(Offer.predicted_acceptance, Offer.id)).label("decile"),
        )
        .where(
            Offer.predicted_acceptance.is_not(None),
            Offer.status.in_(ANSWERED),
            Offer.created_at > now - HISTORY,
        )
        .subquery()
    )
    rows = db.session.execute(
        sa.select(
            answered.c.decile,
            sa.func.count(),
            sa.func.avg(answered.c.predicted),
            sa.func.avg(answered.c.accepted),
            sa.func.sum(sa.func.power(answered.c.predicted - answered.c.accepted, 2)),
        )
        .group_by(answered.c.decile)
        .order_by(answered.c.decile)
    ).all()
    total = sum(n for _, n, *_ in rows)
    squared = sum(float(s) for *_, s in rows)
    deciles = [Decile(d, n, float(p), float(o)) for d, n, p, o, _ in rows]
    return Calibration(total, deciles, squared / total if total else None)
