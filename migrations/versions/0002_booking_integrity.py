"""Booking integrity: a slot is booked exactly when it has one live appointment.

- ``slot_booking_consistent``: deferred constraint triggers on ``slot`` and
  ``appointment`` check, at commit, that every slot a transaction touched is
  ``booked`` exactly when it has one active appointment, and ``held`` only with a hold
  offer and no appointment. Checked at commit so a transaction may pass through an
  inconsistent state (cancel, then reopen) but can never commit one. The check waits
  for a concurrent writer of the slot row (``FOR SHARE``), so two transactions that
  each look fine alone cannot commit a ghost together.
- One active appointment per waitlist entry (one want, one booking).
- ``appointment.calendar_sequence``: the ``SEQUENCE`` of the calendar entry the patient
  holds, bumped on every change (a cancellation sends ``METHOD:CANCEL``).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHECK_FUNCTION = """
CREATE FUNCTION slot_booking_check(checked_slot integer) RETURNS void AS $$
DECLARE
    slot_status varchar;
    hold_offer integer;
    active integer;
BEGIN
    SELECT status, hold_offer_id INTO slot_status, hold_offer
        FROM slot WHERE id = checked_slot FOR SHARE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT count(*) INTO active FROM appointment
        WHERE slot_id = checked_slot AND status NOT IN ('cancelled', 'no_show');
    IF (slot_status = 'booked' AND active <> 1)
        OR (slot_status <> 'booked' AND active <> 0)
        OR (slot_status = 'held' AND hold_offer IS NULL) THEN
        RAISE EXCEPTION 'slot % is % with % active appointment(s)', checked_slot, slot_status, active
            USING ERRCODE = 'check_violation', CONSTRAINT = 'slot_booking_consistent';
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION slot_booking_check_slot() RETURNS trigger AS $$
BEGIN
    PERFORM slot_booking_check(NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION slot_booking_check_appointment() RETURNS trigger AS $$
BEGIN
    PERFORM slot_booking_check(NEW.slot_id);
    IF TG_OP = 'UPDATE' AND OLD.slot_id <> NEW.slot_id THEN
        PERFORM slot_booking_check(OLD.slot_id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER slot_booking_consistent
    AFTER INSERT OR UPDATE OF status, hold_offer_id ON slot
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION slot_booking_check_slot();

CREATE CONSTRAINT TRIGGER appointment_slot_consistent
    AFTER INSERT OR UPDATE OF status, slot_id ON appointment
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION slot_booking_check_appointment();
"""

DROP_CHECK = """
DROP TRIGGER IF EXISTS appointment_slot_consistent ON appointment;
DROP TRIGGER IF EXISTS slot_booking_consistent ON slot;
DROP FUNCTION IF EXISTS slot_booking_check_appointment();
DROP FUNCTION IF EXISTS slot_booking_check_slot();
DROP FUNCTION IF EXISTS slot_booking_check(integer);
"""

#: Earlier code could book one waitlist entry twice; keep the first booking's link so
#: the unique index can be built (the appointments themselves are left alone).
UNLINK_DUPLICATE_ENTRY_BOOKINGS = """
UPDATE appointment SET waitlist_entry_id = NULL
WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY waitlist_entry_id ORDER BY booked_at, id) AS n
        FROM appointment
        WHERE waitlist_entry_id IS NOT NULL AND status NOT IN ('cancelled', 'no_show')
    ) ranked WHERE n > 1
)
"""


def upgrade():
    op.add_column(
        "appointment",
        sa.Column("calendar_sequence", sa.Integer(), server_default="0", nullable=False),
    )
    op.execute(UNLINK_DUPLICATE_ENTRY_BOOKINGS)
    op.create_index(
        "uq_appointment_one_active_per_entry",
        "appointment",
        ["waitlist_entry_id"],
        unique=True,
        postgresql_where=sa.text(
            "waitlist_entry_id IS NOT NULL AND status NOT IN ('cancelled', 'no_show')"
        ),
    )
    op.execute(CHECK_FUNCTION)


def downgrade():
    op.execute(DROP_CHECK)
    op.drop_index("uq_appointment_one_active_per_entry", table_name="appointment")
    op.drop_column("appointment", "calendar_sequence")
