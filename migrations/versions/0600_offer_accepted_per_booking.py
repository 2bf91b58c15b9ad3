"""A slot booked through an offer, then released, can be booked through a new offer.

``uq_offer_one_accepted_per_slot`` allowed one accepted offer per slot ever. A booking
cancelled later (a release, a patient's cancellation) leaves its offer accepted — the
patient did accept, and analytics and learning count it — so every later accept of the
reopened slot failed on the index (409 ``slot_filled``; a deposit paid at Stripe was then
neither recorded nor refunded). One live booking per slot is
``uq_appointment_one_active_per_slot``; what is left to guard is that an offer makes one
booking: ``uq_appointment_one_per_offer``.

Revision ID: 0600
Revises: 0500
Create Date: 2026-12-01 01:45:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0600"
down_revision = "0500"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(
        "uq_offer_one_accepted_per_slot",
        table_name="offer",
        postgresql_where=sa.text("status = 'accepted'"),
    )
    op.create_index(
        "uq_appointment_one_per_offer",
        "appointment",
        ["offer_id"],
        unique=True,
        postgresql_where=sa.text("offer_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_appointment_one_per_offer",
        table_name="appointment",
        postgresql_where=sa.text("offer_id IS NOT NULL"),
    )
    op.create_index(
        "uq_offer_one_accepted_per_slot",
        "offer",
        ["slot_id"],
        unique=True,
        postgresql_where=sa.text("status = 'accepted'"),
    )
