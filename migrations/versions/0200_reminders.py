"""Reminders: appointment reminders as scheduled notifications in PostgreSQL.

Hand-written: one new table. A reminder row is the truth (its RQ job is only a
shortcut to the due time); ``uq_reminder_one_scheduled_per_lead`` keeps one live
reminder per lead time per appointment, ``ix_reminder_status_due`` serves the sweep.
Appointments booked before this migration get no reminders (nothing to backfill:
the next booking, move or time-zone change plans them).

Revision ID: 0200
Revises: 0003
Create Date: 2026-12-01 09:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0200"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminder",
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("lead_hours", sa.Integer(), nullable=False),
        sa.Column("slot_start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("nominal_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "scheduled",
                "sent",
                "cancelled",
                "skipped",
                name="reminder_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=200), server_default="", nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lead_hours > 0", name=op.f("ck_reminder_lead_positive")),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_reminder_appointment_id_appointment"),
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification.id"],
            name=op.f("fk_reminder_notification_id_notification"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_reminder_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder")),
    )
    op.create_index(
        op.f("ix_reminder_appointment_id"), "reminder", ["appointment_id"], unique=False
    )
    op.create_index(op.f("ix_reminder_patient_id"), "reminder", ["patient_id"], unique=False)
    op.create_index("ix_reminder_status_due", "reminder", ["status", "due_at"], unique=False)
    op.create_index(
        "uq_reminder_one_scheduled_per_lead",
        "reminder",
        ["appointment_id", "lead_hours"],
        unique=True,
        postgresql_where=sa.text("status = 'scheduled'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_reminder_one_scheduled_per_lead",
        table_name="reminder",
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.drop_index("ix_reminder_status_due", table_name="reminder")
    op.drop_index(op.f("ix_reminder_patient_id"), table_name="reminder")
    op.drop_index(op.f("ix_reminder_appointment_id"), table_name="reminder")
    op.drop_table("reminder")
