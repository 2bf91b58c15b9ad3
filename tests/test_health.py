"""``GET /livez`` answers from the process alone; ``GET /healthz`` checks the engines."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from redis.connection import ConnectionPool

from portal.db import db


def test_livez_is_plain_ok_without_touching_database_or_redis(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.session.commit()  # nothing of the test's own left to flush while we count
    touched: list[str] = []

    def on_checkout(*_: Any) -> None:
        touched.append("database connection")

    def no_redis(*_: Any, **__: Any) -> None:
        touched.append("redis connection")
        raise AssertionError("/livez must not use Redis")

    monkeypatch.setattr(ConnectionPool, "get_connection", no_redis)
    sa.event.listen(db.engine, "checkout", on_checkout)
    try:
        resp = client.get("/livez")
    finally:
        sa.event.remove(db.engine, "checkout", on_checkout)

    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert resp.get_data(as_text=True) == "ok"
    assert "Set-Cookie" not in resp.headers
    assert touched == []


def test_healthz_reports_database_and_queue(client: FlaskClient) -> None:
    resp = client.get("/healthz")

    assert resp.status_code == 200
    assert resp.get_json() == {"database": "ok", "queue": "ok", "worker": "down", "cron": "down"}
