"""Changing many offers at once, in one lock order.

Booking one slot withdraws that slot's other offers *and* the booking patient's offers
on other slots; two bookings at once can therefore each want rows the other holds.
Every bulk change to offers goes through ``update_offers``, which locks the rows in id
order first, so such pairs queue behind each other instead of deadlocking.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from portal.db import db
from portal.models import Offer


def update_offers(condition: sa.ColumnElement[bool], **values: Any) -> list[Offer]:
    """Set ``values`` on the offers matching ``condition`` and return them (one statement).

    The condition is re-checked on each row after its lock is granted (READ COMMITTED),
    so an offer another transaction just answered is left alone.
    """
    locked_ids = sa.select(Offer.id).where(condition).order_by(Offer.id).with_for_update()
    return list(
        db.session.scalars(
            sa.update(Offer)
            .where(Offer.id.in_(locked_ids))
            .values(**values)
            .returning(Offer)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
    )
