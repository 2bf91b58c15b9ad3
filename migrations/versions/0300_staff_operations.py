"""Staff operations: paused waitlist entries, worked outreach tasks, the clinic's catalogue.

Hand-written:
- ``waitlist_entry.status`` may be ``paused`` (staff paused it; not offered, resumable).
- ``outreach_task``: ``claim_expires_at`` (an unworked claim lapses), ``retry_at`` (no
  answer: call again after), ``call_attempts``; outcomes ``reached`` (a message that asks
  nothing back was passed on) and ``not_needed`` (closed by itself, the offer ended).
- ``location.opening_hours``: weekly hours in the location's zone (JSONB, ``[]`` = not set).
- ``practitioner_service``: which services each practitioner performs.

No data moves: existing rows keep their values (tasks unclaimed, hours unset, no
practitioner lists).

Revision ID: 0300
Revises: 0100 (chained after issues 10 and 9, which landed on main first)
Create Date: 2026-12-02 10:00:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0300"
down_revision = "0100"
branch_labels = None
depends_on = None

WAITLIST_BEFORE = ("active", "booked", "unreachable", "cancelled")
WAITLIST_AFTER = ("active", "paused", "booked", "unreachable", "cancelled")
OUTCOME_BEFORE = (
    "reached_accepted",
    "reached_declined",
    "left_message",
    "not_reached",
    "wrong_number",
)
OUTCOME_AFTER = ("reached", *OUTCOME_BEFORE, "not_needed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_check(table: str, name: str, condition: str) -> None:
    op.drop_constraint(op.f(name), table, type_="check")
    op.create_check_constraint(op.f(name), table, condition)


def upgrade() -> None:
    _replace_check(
        "waitlist_entry", "ck_waitlist_entry_waitlist_status", _in("status", WAITLIST_AFTER)
    )
    _replace_check(
        "outreach_task",
        "ck_outreach_task_outreach_outcome",
        _in("outcome", OUTCOME_AFTER),
    )
    op.add_column(
        "outreach_task", sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("outreach_task", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "outreach_task",
        sa.Column("call_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "location",
        sa.Column(
            "opening_hours",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )
    op.create_table(
        "practitioner_service",
        sa.Column("practitioner_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_practitioner_service_practitioner_id_practitioner"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["service.id"],
            name=op.f("fk_practitioner_service_service_id_service"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "practitioner_id", "service_id", name=op.f("pk_practitioner_service")
        ),
    )
    op.create_index(
        "ix_practitioner_service_service_id", "practitioner_service", ["service_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_practitioner_service_service_id", table_name="practitioner_service")
    op.drop_table("practitioner_service")
    op.drop_column("location", "opening_hours")
    op.drop_column("outreach_task", "call_attempts")
    op.drop_column("outreach_task", "retry_at")
    op.drop_column("outreach_task", "claim_expires_at")
    op.execute("UPDATE outreach_task SET outcome = NULL WHERE outcome IN ('reached', 'not_needed')")
    _replace_check(
        "outreach_task", "ck_outreach_task_outreach_outcome", _in("outcome", OUTCOME_BEFORE)
    )
    # A paused entry may sit beside an active one for the same want: close it instead.
    op.execute(
        "UPDATE waitlist_entry SET status = 'cancelled', closed_at = now() WHERE status = 'paused'"
    )
    _replace_check(
        "waitlist_entry", "ck_waitlist_entry_waitlist_status", _in("status", WAITLIST_BEFORE)
    )
