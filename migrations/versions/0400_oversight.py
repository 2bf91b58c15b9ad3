"""Oversight: the audit log refuses TRUNCATE too; indexes for the log and the dashboard.

Hand-written:
- ``audit_event``: a statement-level ``BEFORE TRUNCATE`` trigger joins the row triggers of
  0001 (UPDATE, DELETE), so the trail is append-only against every data-changing statement.
- ``audit_event`` indexes end in ``(occurred_at, id)``: the log's keyset pagination walks
  one index whatever the filter (all events, one entity, one actor, one action).
- ``offer.mode``: the offer mode (``sequential``/``waves``/``broadcast``) in force when the
  offer was made, so acceptance by mode survives later policy edits. Existing offers take
  their category's current policy (``waves`` where none is set, the default).
- indexes for the analytics aggregates: ``slot.opened_at``, ``appointment.slot_id`` (every
  appointment, not only live ones), ``appointment.starts_at``, ``offer.created_at``,
  ``notification.created_at``, ``charge.created_at``.

Revision ID: 0400
Revises: 0300
Create Date: 2026-11-30 22:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0400"
down_revision = "0300"
branch_labels = None
depends_on = None

REFUSE_TRUNCATE = """
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_change();
"""

MODES = ("sequential", "waves", "broadcast")

#: (name, table, columns) of the plain indexes this revision adds.
INDEXES = (
    ("ix_audit_event_time", "audit_event", ["occurred_at", "id"]),
    ("ix_audit_event_actor", "audit_event", ["actor_type", "actor_id", "occurred_at", "id"]),
    ("ix_slot_opened_at", "slot", ["opened_at"]),
    ("ix_appointment_slot_id", "appointment", ["slot_id"]),
    ("ix_appointment_starts_at", "appointment", ["starts_at"]),
    ("ix_offer_created_at", "offer", ["created_at"]),
    ("ix_notification_created_at", "notification", ["created_at"]),
    ("ix_charge_created_at", "charge", ["created_at"]),
)


def upgrade() -> None:
    op.execute(REFUSE_TRUNCATE)
    op.drop_index("ix_audit_event_occurred_at", table_name="audit_event")
    op.drop_index("ix_audit_event_entity", table_name="audit_event")
    op.drop_index(op.f("ix_audit_event_action"), table_name="audit_event")
    op.create_index(
        "ix_audit_event_entity",
        "audit_event",
        ["entity_type", "entity_id", "occurred_at", "id"],
    )
    op.create_index("ix_audit_event_action", "audit_event", ["action", "occurred_at", "id"])
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)

    op.add_column("offer", sa.Column("mode", sa.String(length=10), nullable=True))
    op.create_check_constraint(
        op.f("ck_offer_offer_mode"), "offer", f"mode IN ({', '.join(repr(m) for m in MODES)})"
    )
    op.execute(
        "UPDATE offer SET mode = coalesce(("
        " SELECT p.mode FROM slot s JOIN service v ON v.id = s.service_id"
        " JOIN offer_policy p ON p.category = v.category WHERE s.id = offer.slot_id"
        "), 'waves')"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_offer_offer_mode"), "offer", type_="check")
    op.drop_column("offer", "mode")
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_index("ix_audit_event_action", table_name="audit_event")
    op.drop_index("ix_audit_event_entity", table_name="audit_event")
    op.create_index(op.f("ix_audit_event_action"), "audit_event", ["action"], unique=False)
    op.create_index("ix_audit_event_entity", "audit_event", ["entity_type", "entity_id"])
    op.create_index("ix_audit_event_occurred_at", "audit_event", ["occurred_at"])
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
