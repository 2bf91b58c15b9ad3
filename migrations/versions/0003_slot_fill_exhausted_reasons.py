"""Slot: why filling stopped (waiting patients left out, counted per reason).

Hand-written: one nullable JSONB column, no data to move (slots that stopped before
this keep NULL and show "Nobody left to ask" without counts until they stop again).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 19:40:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "slot",
        sa.Column("fill_exhausted_reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("slot", "fill_exhausted_reasons")
