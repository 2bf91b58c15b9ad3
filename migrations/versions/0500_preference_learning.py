"""Preference learning: the `learned` offer mode, and each offer's predicted acceptance.

Hand-written: the offer-mode CHECKs (the category's policy, and the mode each offer was
made under, from 0400) gain one value; ``offer.predicted_acceptance`` is a
nullable float (offers made before this keep NULL and stay out of the calibration).

Revision ID: 0500
Revises: 0400
Create Date: 2026-11-30 23:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0500"
down_revision = "0400"
branch_labels = None
depends_on = None

MODES = ("sequential", "waves", "broadcast")


def _mode_check(modes: tuple[str, ...]) -> None:
    listed = ", ".join(f"'{m}'" for m in modes)
    for table in ("offer_policy", "offer"):
        name = op.f(f"ck_{table}_offer_mode")
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, f"mode IN ({listed})")


def upgrade() -> None:
    _mode_check((*MODES, "learned"))
    op.add_column("offer", sa.Column("predicted_acceptance", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("offer", "predicted_acceptance")
    op.execute("UPDATE offer_policy SET mode = 'waves' WHERE mode = 'learned'")
    op.execute("UPDATE offer SET mode = 'waves' WHERE mode = 'learned'")
    _mode_check(MODES)
