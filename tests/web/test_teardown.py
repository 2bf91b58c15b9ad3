"""A request whose database connection died (PostgreSQL restarted) still ends cleanly.

Found by the soak: PostgreSQL crashed while a patient's offer page was being answered;
ending the request rolled back on the dead connection, the error escaped the app's
error handlers (it happens in the teardown) and gunicorn answered 500.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from portal.db import db


def test_a_request_whose_connection_died_ends_without_an_error(app: Flask) -> None:
    ctx = app.app_context()  # its own, as each request has: its own session
    ctx.push()
    try:
        pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))  # a transaction is open
        with db.engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        ctx.pop()  # the teardown ends the session: it must not raise
    with app.app_context():
        assert db.session.scalar(sa.text("SELECT 1")) == 1  # and the pool recovers
