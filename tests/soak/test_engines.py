"""The soak's private PostgreSQL: a crash loses no commit it acknowledged.

The soak crashes PostgreSQL (``pg_ctl -m immediate``) while the portal runs. The portal
relies on an acknowledged commit surviving a crash — e.g. a notification attempt is
claimed and committed *before* the provider is called, so a retried job never sends it
twice. A cluster that acknowledges commits before their WAL leaves the process
(``synchronous_commit = off``) forgets them when it crashes: the soak then counted a
message sent twice where no real deployment could (found as ``duplicated=1``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.soak.engines import PrivatePostgres

pytestmark = pytest.mark.slow


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    base = Path(tempfile.mkdtemp(prefix="portal-pg-test-"))
    os.chmod(base, 0o755)  # noqa: S103 (the postgres user must reach its cluster)
    cluster = PrivatePostgres(base).init().start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def _connect(cluster: PrivatePostgres, **kw: object) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres", **kw
    )


def test_a_commit_acknowledged_before_a_crash_survives_it(postgres: PrivatePostgres) -> None:
    with _connect(postgres, autocommit=True) as conn:
        conn.execute("CREATE TABLE claim (id integer PRIMARY KEY)")
        for i in range(200):  # each its own commit, the crash right after the last
            conn.execute("INSERT INTO claim VALUES (%s)", (i,))
    postgres.crash()
    postgres.start()
    with _connect(postgres) as conn:
        assert conn.execute("SELECT count(*) FROM claim").fetchone() == (200,)
