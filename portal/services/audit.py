"""Who did what: actors and the audit helper that writes in the caller's transaction."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from portal.db import db
from portal.models import AuditEvent
from portal.models.enums import ActorType


@dataclass(frozen=True)
class Actor:
    """Whoever causes a change: a staff user, a patient, the system, a webhook, the API."""

    type: ActorType
    id: str | None = None

    @classmethod
    def staff(cls, user: Any) -> Actor:
        return cls(ActorType.STAFF, str(user.id))

    @classmethod
    def patient(cls, patient_id: int) -> Actor:
        return cls(ActorType.PATIENT, str(patient_id))

    @classmethod
    def webhook(cls, source: str) -> Actor:
        return cls(ActorType.WEBHOOK, source)

    @classmethod
    def api(cls, token_id: int) -> Actor:
        return cls(ActorType.API, str(token_id))

    @property
    def staff_id(self) -> int | None:
        return int(self.id) if self.type == ActorType.STAFF and self.id else None


SYSTEM = Actor(ActorType.SYSTEM, None)


def _json_safe(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def snapshot(obj: Any, *fields: str) -> dict[str, Any]:
    """Return the named attributes of ``obj`` as a JSON-safe dict (no PHI fields, please)."""
    return {f: _json_safe(getattr(obj, f)) for f in fields}


def record(
    actor: Actor,
    action: str,
    entity: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event for ``entity`` to the current transaction (flushes the entity)."""
    if getattr(entity, "id", None) is None:
        db.session.flush()
    event = AuditEvent(
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        entity_type=type(entity).__tablename__,
        entity_id=entity.id,
        before=_json_safe(before) if before is not None else None,
        after=_json_safe(after) if after is not None else None,
    )
    db.session.add(event)
    return event
