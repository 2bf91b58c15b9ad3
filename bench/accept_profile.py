"""Where an accept's time goes: statements per request and a profile of the winner and a loser.

Usage (from the project root)::

    .venv/bin/python bench/accept_profile.py --offers 50

Engines as in the tests (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded ones). Builds a
fresh ``portal_profile`` database, one broadcast wave of ``--offers`` offers, and drives
the real patient pages in-process (Flask's test client, CSRF on): the winner opens
their offer and taps Accept, then a loser does the same. For each request it prints the
number of SQL statements, how many of them ran while the slot row was locked (from the
winning ``UPDATE slot`` to the commit), the statements by kind, the Redis commands after
commit and how long the slot row stayed locked, and the top of a cProfile (``--profile N``
rows, 0 for none: then nothing is profiled and the times are plain).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from redis import Redis  # noqa: E402

from portal import create_app  # noqa: E402
from portal.config import limiter_storage_uri  # noqa: E402
from portal.db import db  # noqa: E402
from portal.engines import create_fresh_database, drop_database, test_engines  # noqa: E402
from tests import factories as f  # noqa: E402

DATABASE = "portal_profile"
SORT = ["cumulative"]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Statements:
    """SQL statements seen on one engine, and those run while the slot row was locked."""

    all: list[str] = field(default_factory=list)
    locked: int = 0
    locked_ms: float = 0.0
    _in_lock: bool = False
    _locked_at: float = 0.0

    def on_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.all.append(statement)
        if self._in_lock:
            self.locked += 1
        elif statement.lstrip().upper().startswith("UPDATE SLOT "):
            self._in_lock = True
            self.locked = 1
            self._locked_at = time.perf_counter()

    def on_commit(self, conn: Any) -> None:
        if self._in_lock:
            self.locked_ms = 1000 * (time.perf_counter() - self._locked_at)
        self._in_lock = False

    def kinds(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for s in self.all:
            words = s.split()
            verb = words[0].upper() if words else "?"
            table = "?"
            for key in ("INTO", "FROM", "UPDATE"):
                if key in (w.upper() for w in words):
                    i = [w.upper() for w in words].index(key)
                    if i + 1 < len(words):
                        table = words[i + 1].strip('"(')
                        break
            out[f"{verb} {table}"] += 1
        return out


@contextlib.contextmanager
def counting(engine: sa.Engine) -> Iterator[Statements]:
    seen = Statements()
    sa.event.listen(engine, "before_cursor_execute", seen.on_execute)
    sa.event.listen(engine, "commit", seen.on_commit)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen.on_execute)
        sa.event.remove(engine, "commit", seen.on_commit)


def redis_commands(redis: Redis) -> int:
    return int(redis.info("stats")["total_commands_processed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=50, help="offers in the broadcast wave")
    parser.add_argument("--profile", type=int, default=25, help="profile rows per request")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (tottime, …)")
    parser.add_argument("--losers", type=int, default=20, help="late losers timed unprofiled")
    parser.add_argument("--redis-db", type=int, default=14)
    args = parser.parse_args(argv)
    SORT[0] = args.sort
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="accept-profile-")))
        server_url, redis_url = stack.enter_context(test_engines(tmp / "engines"))
        redis_url = redis_url.rsplit("/", 1)[0] + f"/{args.redis_db}"
        url = create_fresh_database(server_url, DATABASE)
        stack.callback(drop_database, server_url, DATABASE)
        app = create_app(
            {
                "SECRET_KEY": secrets.token_urlsafe(48),
                "SQLALCHEMY_DATABASE_URI": url,
                "REDIS_URL": redis_url,
                "RATELIMIT_STORAGE_URI": limiter_storage_uri(redis_url),
                "RATELIMIT_ENABLED": False,
                "PUBLIC_BASE_URL": "http://127.0.0.1",
            }
        )
        stack.callback(lambda: Redis.from_url(redis_url).flushdb())
        with app.app_context():
            with contextlib.redirect_stderr(io.StringIO()):
                upgrade(directory=str(PROJECT_ROOT / "migrations"))
            scenes = [f.broadcast_scene(args.offers) for _ in range(2)]
            db.session.remove()
        print(
            f"accept profile: a broadcast wave of {args.offers} offers; the first wave warms "
            "the process up (compiled SQL and templates), the second is measured"
        )
        for number, scene in enumerate(scenes):
            clients = []
            for who, token in (("winner", scene.tokens[0]), ("loser", scene.tokens[1])):
                client = app.test_client()
                with app.app_context():
                    page = client.get(f"/o/{token}")
                csrf = _CSRF.search(page.get_data(as_text=True))
                clients.append((who, token, client, csrf.group(1) if csrf else ""))
            for who, token, client, csrf in clients:
                _run(app, who, client, token, csrf, args.profile, report=number > 0)
        _time_losers(app, scenes[1].tokens[2 : 2 + args.losers], args.profile)
        with app.app_context():
            db.engine.dispose()
    return 0


def _time_losers(app: Flask, tokens: list[str], rows: int = 0) -> None:
    """Mean wall time of opening an offer page and of a late loser's accept (no profiler);
    with ``rows``, then a profile of the same losers tapping again (our code's share)."""
    if not tokens:
        return
    pages, posts = [], []
    profiler = cProfile.Profile()
    for token in tokens:
        client = app.test_client()
        with app.app_context():
            started = time.perf_counter()
            page = client.get(f"/o/{token}")
            pages.append(time.perf_counter() - started)
        found = _CSRF.search(page.get_data(as_text=True))
        with app.app_context():
            started = time.perf_counter()
            client.post(f"/o/{token}/accept", data={"csrf_token": found.group(1) if found else ""})
            posts.append(time.perf_counter() - started)
        if rows:
            with app.app_context():
                profiler.enable()
                client.post(
                    f"/o/{token}/accept", data={"csrf_token": found.group(1) if found else ""}
                )
                profiler.disable()
    with app.app_context():
        client = app.test_client()
        started = time.perf_counter()
        for _ in tokens:
            client.get("/livez")
        bare = (time.perf_counter() - started) / len(tokens)
    print(
        f"\n{len(tokens)} more patients, one at a time, in-process, no profiler: "
        f"GET /o/<token> {1000 * sum(pages) / len(pages):.1f} ms, "
        f"late loser's POST accept {1000 * sum(posts) / len(posts):.1f} ms, "
        f"GET /livez {1000 * bare:.2f} ms (means)"
    )
    if rows:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
        stats.print_stats(rows)
        print("\nthe late losers' second tap, profiled (our code and the libraries it calls):")
        print(out.getvalue())


def _run(
    app: Flask, who: str, client: Any, token: str, csrf: str, rows: int, *, report: bool
) -> None:
    redis = Redis.from_url(app.config["REDIS_URL"])
    before = redis_commands(redis)
    profiler = cProfile.Profile()
    with app.app_context(), counting(db.engine) as seen:
        started = time.perf_counter()
        if rows:
            profiler.enable()
        resp = client.post(f"/o/{token}/accept", data={"csrf_token": csrf})
        if rows:
            profiler.disable()
        took = time.perf_counter() - started
    commands = redis_commands(redis) - before - 1  # less the INFO that read the count
    if not report:
        return
    outcome = (
        "booked"
        if resp.status_code == 303
        else ("just taken" if "just taken" in resp.get_data(as_text=True) else "?")
    )
    print(
        f"\n{who}: POST accept -> {resp.status_code} ({outcome})  {took * 1000:.1f} ms "
        f"in-process{' under cProfile' if rows else ''}; {len(seen.all)} SQL statements "
        f"({seen.locked} while the slot row was locked, for {seen.locked_ms:.1f} ms); "
        f"{commands} Redis commands"
    )
    print("  by kind: " + ", ".join(f"{k} {n}" for k, n in seen.kinds().most_common()))
    if rows:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(SORT[0]).print_stats(rows)
        body = out.getvalue().split("\n")
        start = next(i for i, line in enumerate(body) if "ncalls" in line)
        print("\n".join("  " + line for line in body[start:] if line.strip()))


if __name__ == "__main__":
    sys.exit(main())
