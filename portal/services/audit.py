"""Who did what: actors and the audit helper that writes in the caller's transaction."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from portal.db import db, insert_rows, now_utc
from portal.models import AuditEvent
from portal.models.enums import ActorType


class Action(StrEnum):
    """Every audited action, by entity: the one list of names the audit log can hold."""

    API_TOKEN_CREATED = "api_token.created"  # noqa: S105 (an action name, not a secret)
    API_TOKEN_REVOKED = "api_token.revoked"  # noqa: S105

    AUDIT_EXPORTED = "audit.exported"

    APPOINTMENT_CANCELLED = "appointment.cancelled"
    APPOINTMENT_CHECKED_IN = "appointment.checked_in"
    APPOINTMENT_CONFIRMED = "appointment.confirmed"
    APPOINTMENT_COMPLETED = "appointment.completed"
    APPOINTMENT_CREATED = "appointment.created"
    APPOINTMENT_DISCOUNTED = "appointment.discounted"
    APPOINTMENT_FEE_WAIVED = "appointment.fee_waived"
    APPOINTMENT_NO_SHOW = "appointment.no_show"
    APPOINTMENT_OVERLAP_ALLOWED = "appointment.overlap_allowed"
    APPOINTMENT_RESCHEDULED = "appointment.rescheduled"

    CANCELLATION_POLICY_UPDATED = "cancellation_policy.updated"

    CHARGE_FAILED = "charge.failed"
    CHARGE_OPENED = "charge.opened"
    CHARGE_REFUNDED = "charge.refunded"
    CHARGE_SUCCEEDED = "charge.succeeded"
    CHARGE_WAIVED = "charge.waived"

    CANCELLATION_POLICY_CHANGED = "cancellation_policy.changed"

    CLOSURE_CREATED = "closure.created"
    CLOSURE_DELETED = "closure.deleted"

    LOCATION_CREATED = "location.created"
    LOCATION_UPDATED = "location.updated"

    NOTIFICATION_CANCELLED = "notification.cancelled"
    NOTIFICATION_DELIVERED = "notification.delivered"
    NOTIFICATION_EXHAUSTED = "notification.exhausted"

    OFFER_ACCEPTED = "offer.accepted"
    OFFER_CREATED = "offer.created"
    OFFER_DECLINED = "offer.declined"
    OFFER_EXPIRED = "offer.expired"
    OFFER_WITHDRAWN = "offer.withdrawn"

    OFFER_POLICY_CHANGED = "offer_policy.changed"

    OUTREACH_CLAIMED = "outreach.claimed"
    OUTREACH_CLOSED = "outreach.closed"
    OUTREACH_OUTCOME_RECORDED = "outreach.outcome_recorded"
    OUTREACH_RELEASED = "outreach.released"

    PATIENT_CREATED = "patient.created"
    PATIENT_FLAGGED = "patient.flagged"
    PATIENT_FLAG_ANNOTATED = "patient.flag_annotated"
    PATIENT_FLAG_RESOLVED = "patient.flag_resolved"
    PATIENT_PHONE_REJECTED = "patient.phone_rejected"
    PATIENT_SMS_OPT_IN = "patient.sms_opt_in"
    PATIENT_SMS_OPT_OUT = "patient.sms_opt_out"
    PATIENT_TIMEZONE_CHANGED = "patient.timezone_changed"

    REMINDER_DROPPED = "reminder.dropped"
    REMINDER_SENT = "reminder.sent"
    REMINDERS_CANCELLED = "appointment.reminders_cancelled"
    REMINDERS_PLANNED = "appointment.reminders_planned"
    PATIENT_TIER_CHANGED = "patient.tier_changed"
    PATIENT_UPDATED = "patient.updated"

    PRACTITIONER_CREATED = "practitioner.created"
    PRACTITIONER_UPDATED = "practitioner.updated"

    SERVICE_CREATED = "service.created"
    SERVICE_UPDATED = "service.updated"

    SETTING_CHANGED = "setting.changed"

    PATIENT_CARD_SAVED = "patient.card_saved"

    SLOT_BOOKED = "slot.booked"
    SLOT_CLOSED = "slot.closed"
    SLOT_CREATED = "slot.created"
    SLOT_FREED = "slot.freed"
    SLOT_FILL_EXHAUSTED = "slot.fill_exhausted"
    SLOT_FILLING_RESTARTED = "slot.filling_restarted"
    SLOT_HELD = "slot.held"
    SLOT_HOLD_ENDED = "slot.hold_ended"
    SLOT_HOLD_LAPSED = "slot.hold_lapsed"
    SLOT_OPENED = "slot.opened"
    SLOT_REPAIRED = "slot.repaired"
    SLOT_WAVE_STARTED = "slot.wave_started"

    STAFF_ACTIVATED = "staff.activated"
    STAFF_CREATED = "staff.created"
    STAFF_DEACTIVATED = "staff.deactivated"
    STAFF_INVITED = "staff.invited"
    STAFF_LOGIN = "staff.login"
    STAFF_LOGIN_FAILED = "staff.login_failed"
    STAFF_LOGOUT = "staff.logout"
    STAFF_PASSWORD_CHANGED = "staff.password_changed"  # noqa: S105
    STAFF_ROLE_CHANGED = "staff.role_changed"

    WAITLIST_CLOSED = "waitlist.closed"
    WAITLIST_JOINED = "waitlist.joined"
    WAITLIST_REJOINED = "waitlist.rejoined"
    WAITLIST_PAUSED = "waitlist.paused"
    WAITLIST_REMOVED = "waitlist.removed"
    WAITLIST_RESUMED = "waitlist.resumed"
    WAITLIST_UNREACHABLE = "waitlist.unreachable"
    WAITLIST_UPDATED = "waitlist.updated"


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
    action: Action,
    entity: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event for ``entity`` to the current transaction (flushes the entity)."""
    if not isinstance(action, Action):  # free text would split the log's vocabulary
        raise TypeError(f"audit actions are Action members, not {action!r}")
    if getattr(entity, "id", None) is None:
        db.session.flush()
    event = AuditEvent(
        actor_type=actor.type,
        actor_id=actor.id,
        action=action.value,
        entity_type=type(entity).__tablename__,
        entity_id=entity.id,
        before=_json_safe(before) if before is not None else None,
        after=_json_safe(after) if after is not None else None,
    )
    db.session.add(event)
    return event


def record_each(
    actor: Actor,
    action: Action,
    entities: Sequence[Any],
    *,
    after: Callable[[Any], dict[str, Any] | None] | None = None,
) -> None:
    """``record`` for many saved entities at once, in one statement (``insert_rows``).

    ``after`` gives each entity's ``after`` snapshot. Events are written in the
    entities' order.
    """
    if not isinstance(action, Action):
        raise TypeError(f"audit actions are Action members, not {action!r}")
    if not entities:
        return
    db.session.flush()  # every entity has its id, as ``record`` makes sure
    now = now_utc()
    insert_rows(
        AuditEvent.__table__,
        [
            {
                "occurred_at": now,
                "actor_type": actor.type,
                "actor_id": actor.id,
                "action": action.value,
                "entity_type": type(entity).__tablename__,
                "entity_id": entity.id,
                "before": None,
                "after": _json_safe(after(entity)) if after is not None else None,
            }
            for entity in entities
        ],
        returning=(),
    )
