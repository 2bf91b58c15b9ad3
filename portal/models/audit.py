"""The append-only audit trail (UPDATE, DELETE and TRUNCATE are refused by triggers:
migrations 0001 and 0400)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import PkMixin, UTCDateTime, db, enum_column, now_utc
from portal.models.enums import ActorType


class AuditEvent(PkMixin, db.Model):
    __tablename__ = "audit_event"
    __table_args__ = (
        # Each index ends in (occurred_at, id): the log pages newest first by that key
        # (keyset pagination), whichever filter leads.
        sa.Index("ix_audit_event_time", "occurred_at", "id"),
        sa.Index("ix_audit_event_entity", "entity_type", "entity_id", "occurred_at", "id"),
        sa.Index("ix_audit_event_actor", "actor_type", "actor_id", "occurred_at", "id"),
        sa.Index("ix_audit_event_action", "action", "occurred_at", "id"),
    )

    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    actor_type: Mapped[ActorType] = mapped_column(enum_column(ActorType, "actor_type"))
    actor_id: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(80))
    entity_type: Mapped[str] = mapped_column(sa.String(40))
    entity_id: Mapped[int | None]
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
