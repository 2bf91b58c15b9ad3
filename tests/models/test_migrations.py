"""The migrations build the schema the models describe, and can be undone."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade

from portal.db import db

pytestmark = pytest.mark.usefixtures("app")


def test_upgrade_from_empty_matches_the_models() -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(app: Flask) -> None:
    directory = str(Path(app.root_path).parent / "migrations")
    db.session.remove()
    downgrade(directory=directory, revision="base")
    with db.engine.connect() as conn:
        tables = conn.exec_driver_sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'"
            " AND table_name <> 'alembic_version'"
        ).scalar()
    assert tables == 0
    upgrade(directory=directory)
    with db.engine.connect() as conn:
        assert not compare_metadata(MigrationContext.configure(conn), db.metadata)


def test_0100_moves_old_charges_into_the_ledger_and_seeds_policies(app: Flask) -> None:
    """Charges written by the old schema keep their meaning as ledger entries."""
    directory = str(Path(app.root_path).parent / "migrations")
    db.session.remove()
    downgrade(directory=directory, revision="0003")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO patient (id, name, phone_raw, timezone, timezone_source, sms_opt_out,"
            " deposit_required, prepayment_required, created_at, updated_at) VALUES"
            " (1, 'P', '', 'UTC', 'explicit', false, false, false, now(), now())"
        )
        for n, status in enumerate(("pending", "collected", "refunded"), start=1):
            conn.exec_driver_sql(
                "INSERT INTO charge (id, patient_id, kind, amount_cents, status, idempotency_key,"
                f" description, created_at, updated_at) VALUES ({n}, 1, 'deposit', 5000,"
                f" '{status}', 'k{n}', '', now(), now())"
            )
    upgrade(directory=directory)
    with db.engine.begin() as conn:
        rows = conn.exec_driver_sql(
            "SELECT charge_id, status FROM charge_entry ORDER BY charge_id, id"
        ).all()
        policies = conn.exec_driver_sql(
            "SELECT category, grace_minutes, late_fee_kind, late_fee_value, notice_hours"
            " FROM cancellation_policy ORDER BY category"
        ).all()
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("DELETE FROM charge_entry")
        conn.exec_driver_sql("DELETE FROM charge")
        conn.exec_driver_sql("DELETE FROM patient")
        conn.exec_driver_sql("DELETE FROM cancellation_policy")
    assert rows == [
        (1, "owed"),
        (2, "owed"),
        (2, "succeeded"),
        (3, "owed"),
        (3, "succeeded"),
        (3, "refunded"),
    ]
    assert policies == [
        ("facial", 15, "percent", 50, 12),
        ("injectables", 15, "percent", 50, 24),
        ("laser", 10, "percent", 50, 24),
    ]


def test_the_ledger_refuses_edits() -> None:
    from sqlalchemy.exc import DBAPIError

    from portal.models.enums import ChargeKind
    from portal.services import ledger
    from portal.services.audit import SYSTEM
    from tests import factories as f

    charge = ledger.open_charge(
        patient_id=f.patient().id,
        kind=ChargeKind.DEPOSIT,
        amount_cents=5000,
        key="deposit:offer:1",
        description="Deposit",
        actor=SYSTEM,
    )
    db.session.commit()
    for statement in (
        f"UPDATE charge SET amount_cents = 1 WHERE id = {charge.id}",
        f"UPDATE charge_entry SET status = 'succeeded' WHERE charge_id = {charge.id}",
        f"DELETE FROM charge_entry WHERE charge_id = {charge.id}",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(sa.text(statement))
        db.session.rollback()
