"""Scratch databases for the simulation: on the live server, never the live database.

Each is uniquely named (``portal_sim_<pid>_<random>``), created on the same server as
the configured ``DATABASE_URL``, and dropped when the block ends — also on Ctrl-C and
SIGTERM (turned into an exception so the ``finally`` runs).
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from portal.engines import drop_database, relax_commits
from portal.engines.postgres import _psycopg_kwargs, _with_database

PREFIX = "portal_sim_"


class LiveDatabaseRefused(RuntimeError):
    """The simulation was about to touch the live database."""


def refuse_live(url: str, live_url: str) -> None:
    """Raise unless ``url`` names a scratch database other than the live one."""
    name = make_url(url).database or ""
    if name == make_url(live_url).database or not name.startswith(PREFIX):
        raise LiveDatabaseRefused(f"refusing to simulate in database {name!r}")


class ScratchServer:
    """Creates scratch databases on the live server and remembers them for dropping."""

    def __init__(self, live_url: str) -> None:
        self.live_url = live_url
        self.names: list[str] = []
        self._stem = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"

    def create(self, label: str, template: str | None = None) -> str:
        """Create a scratch database (a copy of ``template``'s if given); return its URL."""
        name = f"{self._stem}_{label}"
        with psycopg.connect(**_psycopg_kwargs(self.live_url, "postgres"), autocommit=True) as conn:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            conn.execute(statement)
        self.names.append(name)
        url = _with_database(self.live_url, name)
        refuse_live(url, self.live_url)
        relax_commits(url)
        return url

    def drop_all(self) -> None:
        for name in reversed(self.names):
            drop_database(self.live_url, name)
        self.names.clear()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def scratch_server(live_url: str) -> Iterator[ScratchServer]:
    """Yield a ``ScratchServer``; every database it made is dropped afterwards."""
    server = ScratchServer(live_url)
    previous = signal.getsignal(signal.SIGTERM)
    in_main = _main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield server
    finally:
        try:
            server.drop_all()
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
