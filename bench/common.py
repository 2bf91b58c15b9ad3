"""What every bench sets up: engines, its own Redis database, a fresh migrated database.

Engines as in the tests: ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` when set, embedded
ones otherwise (``portal.engines.test_engines``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from flask_migrate import upgrade  # noqa: E402
from redis import Redis  # noqa: E402

from portal import create_app  # noqa: E402
from portal.config import limiter_storage_uri  # noqa: E402
from portal.db import db  # noqa: E402
from portal.engines import create_fresh_database, drop_database, test_engines  # noqa: E402


def bench_redis_url(redis_url: str, db_index: int) -> str:
    """The same Redis server, database ``db_index``: the bench's jobs stay out of the tests'."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":  # unix:///path/redis.sock?db=N (urlunsplit would drop the //)
        path, _, query = redis_url.partition("?")
        kept = [q for q in query.split("&") if q and not q.startswith("db=")]
        return f"{path}?{'&'.join([*kept, f'db={db_index}'])}"
    return urlunsplit(parts._replace(path=f"/{db_index}"))


def flush(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        client.flushdb()  # only the bench's own jobs live in this database
    finally:
        client.close()


def bench_engines(stack: contextlib.ExitStack, prefix: str, redis_db: int) -> tuple[Path, str, str]:
    """Start (or reach) the engines for a bench: (scratch dir, server URL, Redis URL).

    The Redis URL names database ``redis_db``, flushed when ``stack`` closes.
    """
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    server_url, test_redis = stack.enter_context(test_engines(tmp / "engines"))
    redis_url = bench_redis_url(test_redis, redis_db)
    stack.callback(flush, redis_url)
    return tmp, server_url, redis_url


@contextlib.contextmanager
def bench_database(
    server_url: str,
    redis_url: str,
    secret: str | None = None,
    keep: bool = False,
    *,
    name: str = "portal_bench",
    quiet: bool = False,
    **config: Any,
) -> Iterator[str]:
    """Create and migrate a fresh database ``name``; yield its URL inside an app context.

    ``quiet``: the portal's, the jobs' and alembic's INFO lines are left out (a bench
    that does thousands of things would print one each). ``config`` adds to the app's.
    """
    url = create_fresh_database(server_url, name)
    app = create_app(
        {
            "SECRET_KEY": secret or secrets.token_urlsafe(48),
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": redis_url,
            "RATELIMIT_STORAGE_URI": limiter_storage_uri(redis_url),
            "PUBLIC_BASE_URL": "http://127.0.0.1",
            **config,
        }
    )
    if quiet:
        for logger in ("portal", "jobs", "alembic"):
            logging.getLogger(logger).setLevel(logging.WARNING)
    try:
        with app.app_context():
            # alembic.ini's fileConfig logs every step at INFO to stderr; keep the output clean.
            with contextlib.redirect_stderr(io.StringIO()):
                upgrade(directory=str(PROJECT_ROOT / "migrations"))
            yield url
            db.session.remove()
            db.engine.dispose()
    finally:
        if not keep:
            drop_database(server_url, name)
