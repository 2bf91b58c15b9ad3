"""The migrations build the schema the models describe, and can be undone."""

from __future__ import annotations

from pathlib import Path

import pytest
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
