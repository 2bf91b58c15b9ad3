"""A payment taken for a charge already settled is recorded on a charge of its own.

A deposit paid at the desk and online too, or online twice, left the second payment
neither in the ledger nor refunded. ``charge.duplicate_of_id`` marks the charge that
records such a payment (it is then refunded); ``uq_charge_entry_one_success_per_payment``
records one provider payment as paid once, on one charge.

Revision ID: 0700
Revises: 0600
Create Date: 2026-12-01 05:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0700"
down_revision = "0600"
branch_labels = None
depends_on = None

_WHERE = sa.text("status = 'succeeded' AND provider_ref IS NOT NULL")


def upgrade() -> None:
    op.add_column("charge", sa.Column("duplicate_of_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        "fk_charge_duplicate_of_id_charge", "charge", "charge", ["duplicate_of_id"], ["id"]
    )
    op.create_index(
        "uq_charge_entry_one_success_per_payment",
        "charge_entry",
        ["provider", "provider_ref"],
        unique=True,
        postgresql_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index(
        "uq_charge_entry_one_success_per_payment",
        table_name="charge_entry",
        postgresql_where=_WHERE,
    )
    op.drop_constraint("fk_charge_duplicate_of_id_charge", "charge", type_="foreignkey")
    op.drop_column("charge", "duplicate_of_id")
