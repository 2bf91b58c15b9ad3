"""No-shows, cancellations and payments: the charge ledger, sweep index, freed time.

Hand-written.

- ``charge`` becomes the immutable head of what is owed and ``charge_entry`` its
  append-only history (owed → succeeded · failed · waived · refunded). Existing rows
  move over: each charge gets an ``owed`` entry at its creation, and a second entry
  for its old status (pending → none, collected → succeeded by the collecting staff
  user, failed/waived → the same, refunded → succeeded then refunded). Triggers refuse
  UPDATE and DELETE on both tables.
- ``appointment.starts_at``: the slot's start, kept by triggers (insert, a slot moving),
  so the no-show sweep reads one partial index of appointments awaiting arrival.
- ``appointment``: completion time, who cancelled (patient or clinic), the fee tier
  applied, a rebooking discount and the no-show it rebooked.
- ``slot.freed_from_id``: the remainder of a no-show's slot offered as freed time.
- ``patient.stripe_customer_id``: the customer a Checkout payment saved a card for.
- ``cancellation_policy`` is seeded with the implementation guide's values where a
  category has no row yet.

Revision ID: 0100
Revises: 0200
Create Date: 2026-11-30 20:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0100"
down_revision = "0200"
branch_labels = None
depends_on = None

CHARGE_STATUS = ("owed", "succeeded", "failed", "waived", "refunded")
OLD_CHARGE_STATUS = ("pending", "collected", "failed", "waived", "refunded")
FEE_TIER = ("grace", "notice", "late", "full")
PROVIDER = ("desk", "stripe", "system")

#: The implementation guide's policies (grace minutes, late fee, notice hours,
#: full-charge hours). Full-charge hours sit below notice hours so the late fee can
#: apply (with them equal, as the guide had it, that tier could never be reached).
SEED_POLICIES = (
    ("injectables", 15, 50, 24, 4),
    ("laser", 10, 50, 24, 4),
    ("facial", 15, 50, 12, 2),
)

APPEND_ONLY = """
CREATE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER charge_append_only BEFORE UPDATE OR DELETE ON charge
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER charge_entry_append_only BEFORE UPDATE OR DELETE ON charge_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

STARTS_AT = """
CREATE FUNCTION appointment_copy_start() RETURNS trigger AS $$
BEGIN
    SELECT start_at INTO NEW.starts_at FROM slot WHERE id = NEW.slot_id;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER appointment_starts_at BEFORE INSERT OR UPDATE OF slot_id, starts_at
    ON appointment FOR EACH ROW EXECUTE FUNCTION appointment_copy_start();

CREATE FUNCTION slot_moved_appointments() RETURNS trigger AS $$
BEGIN
    UPDATE appointment SET starts_at = NEW.start_at WHERE slot_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER slot_start_moved AFTER UPDATE OF start_at ON slot
    FOR EACH ROW WHEN (OLD.start_at IS DISTINCT FROM NEW.start_at)
    EXECUTE FUNCTION slot_moved_appointments();
"""


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def upgrade() -> None:
    # --- appointment --------------------------------------------------------------
    op.add_column("appointment", sa.Column("completed_at", sa.DateTime(timezone=True)))
    op.add_column("appointment", sa.Column("starts_at", sa.DateTime(timezone=True)))
    op.add_column(
        "appointment",
        sa.Column("cancelled_by_patient", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("appointment", sa.Column("cancellation_tier", _enum(FEE_TIER, "fee_tier")))
    op.add_column("appointment", sa.Column("discount_percent", sa.Integer()))
    op.add_column("appointment", sa.Column("rebooked_from_id", sa.Integer()))
    op.create_foreign_key(
        op.f("fk_appointment_rebooked_from_id_appointment"),
        "appointment",
        "appointment",
        ["rebooked_from_id"],
        ["id"],
    )
    op.create_check_constraint(
        op.f("ck_appointment_discount_in_range"),
        "appointment",
        "discount_percent IS NULL OR (discount_percent > 0 AND discount_percent <= 100)",
    )
    op.execute(
        "UPDATE appointment SET starts_at = slot.start_at FROM slot"
        " WHERE slot.id = appointment.slot_id"
    )
    op.execute(STARTS_AT)
    op.create_index(
        "ix_appointment_awaiting_arrival",
        "appointment",
        ["starts_at"],
        postgresql_where=sa.text("status IN ('booked', 'confirmed')"),
    )
    op.create_index(
        "uq_appointment_one_rebooking",
        "appointment",
        ["rebooked_from_id"],
        unique=True,
        postgresql_where=sa.text(
            "rebooked_from_id IS NOT NULL AND status NOT IN ('cancelled', 'no_show')"
        ),
    )

    # --- slot, patient ----------------------------------------------------------------
    op.add_column("slot", sa.Column("freed_from_id", sa.Integer()))
    op.create_foreign_key(
        op.f("fk_slot_freed_from_id_slot"), "slot", "slot", ["freed_from_id"], ["id"]
    )
    op.add_column("patient", sa.Column("stripe_customer_id", sa.String(length=255)))

    # --- the ledger -------------------------------------------------------------------
    op.create_table(
        "charge_entry",
        sa.Column("charge_id", sa.Integer(), nullable=False),
        sa.Column("status", _enum(CHARGE_STATUS, "charge_status"), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("provider", _enum(PROVIDER, "payment_provider"), nullable=False),
        sa.Column("provider_ref", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_charge_entry_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["charge.id"], name=op.f("fk_charge_entry_charge_id_charge")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["staff_user.id"],
            name=op.f("fk_charge_entry_recorded_by_id_staff_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charge_entry")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_charge_entry_idempotency_key")),
    )
    op.create_index("ix_charge_entry_charge_id", "charge_entry", ["charge_id", "id"])
    op.create_index(
        "uq_charge_entry_one_success",
        "charge_entry",
        ["charge_id"],
        unique=True,
        postgresql_where=sa.text("status = 'succeeded'"),
    )
    op.create_index(
        "uq_charge_entry_one_refund",
        "charge_entry",
        ["charge_id"],
        unique=True,
        postgresql_where=sa.text("status = 'refunded'"),
    )
    # Existing charges: an `owed` entry each, then what their status said.
    op.execute(
        "INSERT INTO charge_entry (charge_id, status, amount_cents, provider, idempotency_key,"
        " note, created_at)"
        " SELECT id, 'owed', amount_cents, 'system', idempotency_key || ':' || 'owed', '', created_at"
        " FROM charge ORDER BY id"
    )
    op.execute(
        "INSERT INTO charge_entry (charge_id, status, amount_cents, provider, idempotency_key,"
        " note, recorded_by_id, created_at)"
        " SELECT id, CASE status WHEN 'collected' THEN 'succeeded' WHEN 'refunded'"
        " THEN 'succeeded' ELSE status END, amount_cents,"
        " CASE WHEN collected_by_id IS NULL THEN 'system' ELSE 'desk' END,"
        " idempotency_key || ':' || CASE status WHEN 'collected' THEN 'succeeded'"
        " WHEN 'refunded' THEN 'succeeded' ELSE status END,"
        " 'moved from the old charge table', collected_by_id,"
        " COALESCE(collected_at, updated_at)"
        " FROM charge WHERE status <> 'pending' ORDER BY id"
    )
    op.execute(
        "INSERT INTO charge_entry (charge_id, status, amount_cents, provider, idempotency_key,"
        " note, created_at)"
        " SELECT id, 'refunded', amount_cents, 'system', idempotency_key || ':' || 'refunded',"
        " 'moved from the old charge table', updated_at FROM charge WHERE status = 'refunded'"
        " ORDER BY id"
    )
    op.drop_constraint(op.f("fk_charge_collected_by_id_staff_user"), "charge", type_="foreignkey")
    op.drop_column("charge", "collected_by_id")
    op.drop_column("charge", "collected_at")
    op.drop_column("charge", "status")  # its CHECK goes with it
    op.drop_column("charge", "updated_at")
    op.create_index(op.f("ix_charge_appointment_id"), "charge", ["appointment_id"])
    op.create_index(op.f("ix_charge_offer_id"), "charge", ["offer_id"])
    op.execute(APPEND_ONLY)

    # --- the guide's cancellation policies ----------------------------------------------
    for category, grace, percent, notice, full in SEED_POLICIES:
        op.execute(
            sa.text(
                "INSERT INTO cancellation_policy (category, grace_minutes, grace_free,"
                " late_fee_kind, late_fee_value, notice_hours, full_charge_hours,"
                " created_at, updated_at)"
                " VALUES (:category, :grace, true, 'percent', :percent, :notice, :full,"
                " now(), now()) ON CONFLICT (category) DO NOTHING"
            ).bindparams(category=category, grace=grace, percent=percent, notice=notice, full=full)
        )


def downgrade() -> None:
    op.execute("DROP TRIGGER charge_append_only ON charge")
    op.execute("DROP TRIGGER charge_entry_append_only ON charge_entry")
    op.execute("DROP FUNCTION ledger_refuse_change()")
    op.drop_index(op.f("ix_charge_offer_id"), table_name="charge")
    op.drop_index(op.f("ix_charge_appointment_id"), table_name="charge")
    op.add_column("charge", sa.Column("updated_at", sa.DateTime(timezone=True)))
    op.add_column("charge", sa.Column("status", _enum(OLD_CHARGE_STATUS, "charge_status")))
    op.add_column("charge", sa.Column("collected_at", sa.DateTime(timezone=True)))
    op.add_column("charge", sa.Column("collected_by_id", sa.Integer()))
    op.create_foreign_key(
        op.f("fk_charge_collected_by_id_staff_user"),
        "charge",
        "staff_user",
        ["collected_by_id"],
        ["id"],
    )
    # Each charge's latest entry becomes its status again.
    op.execute(
        "UPDATE charge SET status = CASE latest.status WHEN 'owed' THEN 'pending'"
        " WHEN 'succeeded' THEN 'collected' ELSE latest.status END,"
        " updated_at = latest.created_at,"
        " collected_at = CASE WHEN latest.status = 'succeeded' THEN latest.created_at END,"
        " collected_by_id = CASE WHEN latest.status = 'succeeded' THEN latest.recorded_by_id END"
        " FROM (SELECT DISTINCT ON (charge_id) charge_id, status, created_at, recorded_by_id"
        " FROM charge_entry ORDER BY charge_id, id DESC) AS latest"
        " WHERE latest.charge_id = charge.id"
    )
    op.execute("UPDATE charge SET status = 'pending', updated_at = created_at WHERE status IS NULL")
    op.alter_column("charge", "status", nullable=False)
    op.alter_column("charge", "updated_at", nullable=False)
    op.drop_index("uq_charge_entry_one_refund", table_name="charge_entry")
    op.drop_index("uq_charge_entry_one_success", table_name="charge_entry")
    op.drop_index("ix_charge_entry_charge_id", table_name="charge_entry")
    op.drop_table("charge_entry")

    op.drop_column("patient", "stripe_customer_id")
    op.drop_constraint(op.f("fk_slot_freed_from_id_slot"), "slot", type_="foreignkey")
    op.drop_column("slot", "freed_from_id")

    op.drop_index("uq_appointment_one_rebooking", table_name="appointment")
    op.drop_index("ix_appointment_awaiting_arrival", table_name="appointment")
    op.execute("DROP TRIGGER slot_start_moved ON slot")
    op.execute("DROP FUNCTION slot_moved_appointments()")
    op.execute("DROP TRIGGER appointment_starts_at ON appointment")
    op.execute("DROP FUNCTION appointment_copy_start()")
    op.drop_constraint(op.f("ck_appointment_discount_in_range"), "appointment", type_="check")
    op.drop_constraint(
        op.f("fk_appointment_rebooked_from_id_appointment"), "appointment", type_="foreignkey"
    )
    for column in (
        "rebooked_from_id",
        "discount_percent",
        "cancellation_tier",
        "cancelled_by_patient",
        "starts_at",
        "completed_at",
    ):
        op.drop_column("appointment", column)
