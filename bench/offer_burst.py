"""Offer-link burst: N patients open ``GET /o/<token>`` at the same instant.

Usage (from the project root)::

    .venv/bin/python bench/offer_burst.py --patients 200 --rounds 3

Engines as in the tests (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded ones); the
portal runs under gunicorn on 127.0.0.1 (``--worker-class``, ``--workers``,
``--threads``). Each round sends a broadcast wave of N offers; N clients, each a new
connection like a patient's phone, wait at a barrier and open their offer page together.
Right after, the same N clients do the same with ``GET /livez`` (no I/O: the bare
endpoint) and ``GET /healthz`` (one PostgreSQL and one Redis round trip) on the same
server. A ``--warmup`` round (default 1) is shown but not counted: each worker opens its
database connections and compiles its SQL on its first pages, which a server does once
after a deploy, not once per broadcast. Defaults: gthread, 4 workers x 4 threads, as
``make run`` serves. Printed: throughput (N / time from the barrier to the last answer), p50/p99, and
the ratios offer:livez and offer:healthz measured moments apart — the machine is shared
and noisy, so read the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import requests  # noqa: E402

from bench.accept_storm import CATEGORY, TIMEOUT, Burst, _timed  # noqa: E402
from bench.common import bench_database, bench_engines  # noqa: E402
from tests import factories as f  # noqa: E402
from tests.e2e.server import gunicorn_server  # noqa: E402


def burst(urls: list[str]) -> Burst:
    """GET every URL at once, one new connection each; the wall time runs from the barrier."""
    released: list[float] = []
    barrier = threading.Barrier(len(urls), action=lambda: released.append(time.perf_counter()))

    def client(url: str) -> tuple[int | None, float, float]:
        with requests.Session() as session:
            barrier.wait(timeout=TIMEOUT)
            return _timed(lambda: session.get(url, timeout=TIMEOUT))

    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        results = list(pool.map(client, urls))
    out = Burst()
    for status, start, end in results:
        out.add(status, end - start)
    out.wall = max(end for _, _, end in results) - released[0]
    return out


def line(name: str, b: Burst) -> str:
    return (
        f"  {name:<16} x{b.count}: {b.classes()} p50={b.pct(50):.0f}ms p99={b.pct(99):.0f}ms "
        f"{b.throughput:.0f}/s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--warmup", type=int, default=1, help="uncounted rounds first (pools open, SQL compiles)"
    )
    parser.add_argument("--redis-db", type=int, default=15)
    args = parser.parse_args(argv)
    if not 2 <= args.patients <= 1000 or not 1 <= args.rounds <= 20 or args.warmup < 0:
        parser.error("--patients must be 2..1000, --rounds 1..20 and --warmup >= 0")

    ratios: list[tuple[float, float]] = []
    failed = False
    with contextlib.ExitStack() as stack:
        tmp, server_url, redis_url = bench_engines(stack, "offer-burst-", args.redis_db)
        secret = secrets.token_urlsafe(48)
        database_url = stack.enter_context(bench_database(server_url, redis_url, secret, False))
        base = stack.enter_context(
            gunicorn_server(
                database_url,
                redis_url,
                secret,
                workers=args.workers,
                threads=args.threads,
                log_path=tmp / "gunicorn.log",
                worker_class=args.worker_class,
            )
        )
        print(
            f"offer-link burst: {args.patients} patients at once x {args.rounds} rounds; gunicorn "
            f"{args.worker_class} {args.workers} workers x {args.threads} threads",
            flush=True,
        )
        burst([f"{base}/livez"] * args.patients)  # warm-up
        for number in range(1 - args.warmup, args.rounds + 1):
            scene = f.broadcast_scene(args.patients, CATEGORY)
            offer = burst([f"{base}/o/{t}" for t in scene.tokens])
            bare = burst([f"{base}/livez"] * args.patients)
            health = burst([f"{base}/healthz"] * args.patients)
            ok = offer.statuses["2xx"] == args.patients
            failed |= not ok  # a broken warm-up round is still a failure
            pair = (offer.throughput / bare.throughput, offer.throughput / health.throughput)
            if number < 1:
                print(f"warm-up {number + args.warmup}/{args.warmup} (not counted):")
            else:
                ratios.append(pair)
                print(f"round {number}/{args.rounds}:")
            for name, b in (
                ("GET /o/<token>", offer),
                ("GET /livez", bare),
                ("GET /healthz", health),
            ):
                print(line(name, b))
            print(
                f"  ratio offer:livez = {pair[0]:.2f}  offer:healthz = {pair[1]:.2f}"
                + ("" if ok else "  (NOT every page answered 200)"),
                flush=True,
            )
    print(
        f"\nmedian ratio offer:livez = {statistics.median(r[0] for r in ratios):.2f} "
        f"(target >= 0.5), offer:healthz = {statistics.median(r[1] for r in ratios):.2f}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
