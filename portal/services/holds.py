"""Queries about deposit holds (the state changes live in ``booking``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from portal.db import db
from portal.models import Slot
from portal.models.enums import SlotStatus


def lapsed_holds(now: datetime) -> list[tuple[int, int]]:
    """(slot id, offer id) of holds whose time ran out."""
    return [
        (slot_id, offer_id)
        for slot_id, offer_id in db.session.execute(
            sa.select(Slot.id, Slot.hold_offer_id).where(
                Slot.status == SlotStatus.HELD, Slot.hold_expires_at <= now
            )
        )
    ]
