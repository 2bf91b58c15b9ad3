"""Accept storm: N patients accept one broadcast offer at the same instant, over HTTP.

Usage (from the project root)::

    .venv/bin/python bench/accept_storm.py --patients 200 --rounds 5 --workers 4

Engines as in the tests: TEST_DATABASE_URL / TEST_REDIS_URL when set, embedded ones
otherwise. A fresh ``portal_bench`` database is built by the migrations (and dropped at
the end); Redis jobs go to their own database (``--redis-db``, flushed at the end) so
they never reach a test run's workers. The portal runs under gunicorn on 127.0.0.1.

Each round builds one slot offered (broadcast) to N new waitlisted patients, opens the
N offer pages (one cookie jar each), then fires the N accepts together and checks the
invariant in PostgreSQL. Right after, ``GET /livez`` (no I/O) and ``GET /healthz`` (one
database and one Redis round trip) are driven with the same concurrency, so each round
quotes accept throughput as a ratio to the bare endpoint measured moments apart. The
machine is shared and noisy: read the ratios, not the absolute figures. Each round also
prints the CPU time the storm cost per request — in the web workers, in PostgreSQL and
in the clients (psutil) — which load stretches far less than wall time. A first
``--warmup`` round (default 1) is shown but not counted: every worker process compiles
its templates and SQL on first use, once after a deploy.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.common import bench_database, bench_engines  # noqa: E402
from portal.db import db  # noqa: E402
from portal.models import Appointment, Notification, Offer, Slot  # noqa: E402
from portal.models.enums import (  # noqa: E402
    INACTIVE_APPOINTMENT_STATUSES,
    OfferStatus,
    Purpose,
    SlotStatus,
)
from tests import factories as f  # noqa: E402
from tests.e2e.server import gunicorn_server, log_tail  # noqa: E402

DATABASE = "portal_bench"
CATEGORY = "injectables"
TIMEOUT = 60.0
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# ------------------------------------------------------------------ measurements


@dataclass
class Burst:
    """Responses of one burst of requests: status classes, latencies, wall time."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.statuses.values())

    @property
    def throughput(self) -> float:
        return self.count / self.wall if self.wall else 0.0

    def add(self, status: int | None, latency: float) -> None:
        self.statuses["err" if status is None else f"{status // 100}xx"] += 1
        self.latencies.append(latency)

    def pct(self, p: float) -> float:
        """The ``p``-th percentile latency in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)] if ordered else 0.0

    def classes(self) -> str:
        return " ".join(f"{k}={self.statuses[k]}" for k in ("2xx", "3xx", "4xx", "5xx", "err"))


@dataclass
class LockSample:
    """``pg_stat_activity`` sampled during a burst: backends waiting on a lock, and busy."""

    samples: int = 0
    interval: float = 0.0
    waiting: list[int] = field(default_factory=list)
    active: list[int] = field(default_factory=list)

    @property
    def lock_wait_seconds(self) -> float:
        """Backend-seconds spent waiting on locks (waiters summed over the samples)."""
        return sum(self.waiting) * self.interval

    def describe(self) -> str:
        if not self.samples:
            return "no samples"
        return (
            f"lock waiters max {max(self.waiting)} (sampled every {self.interval * 1000:.0f} ms, "
            f"{self.samples} samples, ~{self.lock_wait_seconds:.2f} backend-s waiting on locks); "
            f"active backends max {max(self.active)}"
        )


class LockSampler:
    """Sample ``pg_stat_activity`` of one database on a thread until stopped."""

    def __init__(self, database_url: str, interval: float = 0.01) -> None:
        self.engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        self.result = LockSample(interval=interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = sa.text(
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),"
            " count(*) FILTER (WHERE state = 'active')"
            " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                waiting, active = conn.execute(query).one()
                conn.commit()
                self.result.samples += 1
                self.result.waiting.append(int(waiting))
                self.result.active.append(int(active))
                self._stop.wait(self.result.interval)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()


class CpuMeter:
    """CPU seconds spent by the gunicorn this bench started, the PostgreSQL backends of
    the bench database and this process (the clients), between two readings.

    Load on a shared machine stretches wall time, not the CPU work a request costs, so
    these per-request figures compare across runs where latencies do not.
    """

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def _reading(self) -> dict[str, float]:
        out = {"web": 0.0, "postgres": 0.0, "client": 0.0}
        web = {p.pid for p in psutil.Process().children(recursive=True)}
        for proc in psutil.process_iter(["cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if proc.pid in web and "gunicorn" in line:  # the server this bench started
                kind = "web"
            elif line.startswith("postgres:") and f" {DATABASE} " in line:
                kind = "postgres"
            else:
                continue
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                out[kind] += times.user + times.system
        times = psutil.Process().cpu_times()
        out["client"] = times.user + times.system
        return out

    def start(self) -> None:
        self.started = self._reading()

    def stop(self) -> None:
        ended = self._reading()
        self.spent = {k: ended[k] - self.started.get(k, 0.0) for k in ended}

    def per_request(self, requests_made: int) -> str:
        if not self.spent or not requests_made:
            return "cpu: not measured"
        parts = [f"{k} {1000 * v / requests_made:.2f}" for k, v in self.spent.items()]
        return "cpu ms per request: " + ", ".join(parts)


@dataclass
class RoundResult:
    number: int
    setup: float
    prefetch: float
    accept: Burst
    winners: int
    invariant: list[str]  # what is wrong; empty when the invariant holds
    livez: Burst
    healthz: Burst
    locks: LockSample = field(default_factory=lambda: LockSample())
    cpu: str = ""
    livez_cpu: str = ""

    @property
    def accept_to_livez(self) -> float:
        return self.accept.throughput / self.livez.throughput

    @property
    def healthz_to_livez(self) -> float:
        return self.healthz.throughput / self.livez.throughput


def _timed(call: Callable[[], requests.Response]) -> tuple[int | None, float, float]:
    """Run one request: (status or None on a client error, start, end)."""
    start = time.perf_counter()
    try:
        status: int | None = call().status_code
    except requests.RequestException:
        status = None
    return status, start, time.perf_counter()


# ------------------------------------------------------------------------ rounds


def accept_storm(
    base_url: str, tokens: list[str], meter: CpuMeter | None = None
) -> tuple[float, Burst, list[str]]:
    """Open every offer page, then accept all at once: (prefetch seconds, burst, locations).

    ``meter`` reads CPU time from the start line to the last answer."""
    n = len(tokens)
    sessions = [requests.Session() for _ in tokens]
    released: list[float] = []

    def start_line() -> None:
        if meter is not None:
            meter.start()
        released.append(time.perf_counter())

    barrier = threading.Barrier(n, action=start_line)
    began = time.perf_counter()

    def patient(i: int) -> tuple[int | None, float, float, str]:
        session, token = sessions[i], tokens[i]
        try:
            page = session.get(f"{base_url}/o/{token}", timeout=TIMEOUT)
            found = _CSRF.search(page.text) if page.status_code == 200 else None
            csrf = found.group(1) if found else ""
        except requests.RequestException:
            csrf = ""
        try:
            barrier.wait(timeout=TIMEOUT * 2)
        except threading.BrokenBarrierError:
            return None, 0.0, 0.0, ""
        location = ""

        def post() -> requests.Response:
            nonlocal location
            resp = session.post(
                f"{base_url}/o/{token}/accept",
                data={"csrf_token": csrf},
                allow_redirects=False,
                timeout=TIMEOUT,
            )
            location = resp.headers.get("Location", "")
            return resp

        status, start, end = _timed(post)
        return status, start, end, location

    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(patient, range(n)))
        if meter is not None and released:
            meter.stop()
    finally:
        for session in sessions:
            session.close()
    if not released:
        raise RuntimeError("the patients never all reached the start line")
    burst = Burst()
    for status, start, end, _ in results:
        burst.add(status, end - start)
    burst.wall = max(end for _, _, end, _ in results) - released[0]
    return released[0] - began, burst, [loc for *_, loc in results]


def probe(url: str, concurrency: int, total: int) -> Burst:
    """``total`` GETs of ``url`` from ``concurrency`` keep-alive clients started together."""
    remaining = iter(range(total))
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency)

    def client() -> list[tuple[int | None, float, float]]:
        done: list[tuple[int | None, float, float]] = []
        with requests.Session() as session:
            barrier.wait(timeout=TIMEOUT)
            while True:
                with lock:
                    if next(remaining, None) is None:
                        return done
                done.append(_timed(lambda: session.get(url, timeout=TIMEOUT)))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(client) for _ in range(concurrency)]
        results = [r for fut in futures for r in fut.result()]
    burst = Burst()
    for status, start, end in results:
        burst.add(status, end - start)
    burst.wall = max(e for _, _, e in results) - min(s for _, s, _ in results)
    return burst


def check_invariant(slot_id: int, offer_ids: list[int], winner_locations: int) -> list[str]:
    """What is wrong with the slot after the storm (empty list: all good)."""
    db.session.rollback()
    problems = []
    if db.session.scalar(sa.select(Slot.status).where(Slot.id == slot_id)) != SlotStatus.BOOKED:
        problems.append("slot not booked")
    active = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Appointment)
        .where(
            Appointment.slot_id == slot_id,
            Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
        )
    )
    if active != 1:
        problems.append(f"{active} active appointments")
    offers = Counter(
        db.session.scalars(sa.select(Offer.status).where(Offer.slot_id == slot_id)).all()
    )
    losers = len(offer_ids) - 1
    expected = Counter({OfferStatus.ACCEPTED: 1, OfferStatus.WITHDRAWN: losers})
    if offers != expected:
        problems.append(f"offers {dict(offers)}")
    told = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.purpose == Purpose.SLOT_FILLED, Notification.offer_id.in_(offer_ids))
    )
    if told != losers:
        problems.append(f"{told} slot_filled notifications for {losers} losers")
    if winner_locations != 1:
        problems.append(f"{winner_locations} redirects to an appointment page")
    return problems


def run_round(
    number: int, base_url: str, patients: int, probe_requests: int, database_url: str
) -> RoundResult:
    """Build, storm (sampling lock waits), check, then probe the bare and health endpoints."""
    began = time.perf_counter()
    scene = f.broadcast_scene(patients, CATEGORY)
    slot_id, offer_ids, tokens = scene.slot.id, [o.id for o in scene.offers], scene.tokens
    setup = time.perf_counter() - began
    meter = CpuMeter()
    with LockSampler(database_url) as sampler:
        prefetch, burst, locations = accept_storm(base_url, tokens, meter)
    winners = sum(1 for loc in locations if loc.startswith("/a/"))
    problems = check_invariant(slot_id, offer_ids, winners)
    bare = CpuMeter()
    bare.start()
    livez = probe(f"{base_url}/livez", patients, probe_requests)
    bare.stop()
    healthz = probe(f"{base_url}/healthz", patients, probe_requests)
    return RoundResult(
        number,
        setup,
        prefetch,
        burst,
        winners,
        problems,
        livez,
        healthz,
        sampler.result,
        meter.per_request(burst.count),
        bare.per_request(livez.count),
    )


# ---------------------------------------------------------------------- printing


def print_round(r: RoundResult, rounds: int) -> None:
    a = r.accept
    verdict = "ok" if not r.invariant else "FAILED: " + "; ".join(r.invariant)
    print(
        f"round {r.number}/{rounds}: setup {r.setup:.1f} s, {a.count} offer pages {r.prefetch:.1f} s"
    )
    print(
        f"  accept x{a.count}: winners={r.winners} {a.classes()} "
        f"p50={a.pct(50):.0f}ms p99={a.pct(99):.0f}ms "
        f"burst {a.wall:.2f} s = {a.throughput:.0f}/s  invariant {verdict}"
    )
    print(f"  during the prefetch and the storm: {r.locks.describe()}")
    print(f"  the storm's {r.cpu} (winner included)")
    for name, b in (("livez", r.livez), ("healthz", r.healthz)):
        print(
            f"  GET /{name:<7} x{b.count}: {b.classes()} p50={b.pct(50):.0f}ms "
            f"p99={b.pct(99):.0f}ms  {b.throughput:.0f}/s"
        )
    print(f"  GET /livez's {r.livez_cpu}")
    print(
        f"  ratio accept:livez = {r.accept_to_livez:.3f}   healthz:livez = {r.healthz_to_livez:.3f}",
        flush=True,
    )


def pooled(results: list[RoundResult]) -> Burst:
    """Every accept of every round in one burst (the reference pools its rounds so)."""
    out = Burst()
    for r in results:
        out.statuses.update(r.accept.statuses)
        out.latencies.extend(r.accept.latencies)
    return out


_REF_LINE = re.compile(r"p50 ([\d.]+) ms p99 ([\d.]+) ms")


def reference_dir() -> Path | None:
    """Where the shared reference lives (``BENCH_REF_DIR``, or ``shared/bench-ref`` above)."""
    candidates = [os.environ.get("BENCH_REF_DIR", "")]
    candidates += [str(up / "shared" / "bench-ref") for up in PROJECT_ROOT.parents]
    return next(
        (Path(c) for c in candidates if c and (Path(c) / "run-reference.sh").exists()), None
    )


def run_reference(patients: int, rounds: int) -> tuple[str, float, float] | None:
    """Run the reference storm (bare Flask + one conditional UPDATE under gunicorn) now:
    (its line, p50 ms, p99 ms), or None if it is not there or failed."""
    where = reference_dir()
    if where is None:
        print("reference: not found (set BENCH_REF_DIR); no ratio printed", flush=True)
        return None
    with socket.socket() as probe_sock:
        probe_sock.bind(("127.0.0.1", 0))
        port = probe_sock.getsockname()[1]
    env = dict(os.environ, N=str(patients), ROUNDS=str(rounds), REF_PORT=str(port))
    done = subprocess.run(
        ["bash", str(where / "run-reference.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("reference storm")), "")
    found = _REF_LINE.search(line)
    if not found:
        print(f"reference: failed ({done.returncode}): {done.stderr[-500:]}", flush=True)
        return None
    print(line, flush=True)
    return line, float(found.group(1)), float(found.group(2))


def print_ratio(results: list[RoundResult], reference: tuple[str, float, float] | None) -> None:
    """The portal's pooled accept percentiles beside the reference's, and their ratios."""
    every = pooled(results)
    exact = sum(1 for r in results if r.winners == 1 and not r.invariant)
    print(
        f"\nportal storm: {exact}/{len(results)} rounds exactly one winner of "
        f"{results[0].accept.count}; p50 {every.pct(50):.1f} ms p99 {every.pct(99):.1f} ms "
        f"max {max(every.latencies) * 1000:.1f} ms; 5xx={every.statuses['5xx']}"
    )
    if reference is not None:
        _, p50, p99 = reference
        print(
            f"ratio portal:reference (same run)  p50 {every.pct(50) / p50:.2f}x  "
            f"p99 {every.pct(99) / p99:.2f}x   (target p99 <= 3x; aim 1.5x)"
        )


def print_summary(results: list[RoundResult], patients: int) -> None:
    print(f"\nsummary ({patients} simultaneous accepts per round; throughput in requests/s)")
    header = (
        f"{'round':>5} {'win':>3} {'2xx':>4} {'3xx':>4} {'4xx':>4} {'5xx':>4} {'err':>4} "
        f"{'p50ms':>6} {'p99ms':>6} {'accept/s':>8} {'livez/s':>8} {'healthz/s':>9} "
        f"{'acc:livez':>9} {'hz:livez':>8}  invariant"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        s = r.accept.statuses
        print(
            f"{r.number:>5} {r.winners:>3} {s['2xx']:>4} {s['3xx']:>4} {s['4xx']:>4} {s['5xx']:>4} "
            f"{s['err']:>4} {r.accept.pct(50):>6.0f} {r.accept.pct(99):>6.0f} "
            f"{r.accept.throughput:>8.0f} {r.livez.throughput:>8.0f} {r.healthz.throughput:>9.0f} "
            f"{r.accept_to_livez:>9.3f} {r.healthz_to_livez:>8.3f}  "
            f"{'ok' if not r.invariant else 'FAILED'}"
        )
    med = statistics.median
    print("-" * len(header))
    print(
        f"{'median':>5} {'':>3} {'':>4} {'':>4} {'':>4} {'':>4} {'':>4} "
        f"{med(r.accept.pct(50) for r in results):>6.0f} "
        f"{med(r.accept.pct(99) for r in results):>6.0f} "
        f"{med(r.accept.throughput for r in results):>8.0f} "
        f"{med(r.livez.throughput for r in results):>8.0f} "
        f"{med(r.healthz.throughput for r in results):>9.0f} "
        f"{med(r.accept_to_livez for r in results):>9.3f} "
        f"{med(r.healthz_to_livez for r in results):>8.3f}"
    )


# ------------------------------------------------------------------------- setup


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds the context managers: gunicorn and the engines stop


def run(args: argparse.Namespace) -> tuple[list[RoundResult], tuple[str, float, float] | None]:
    """Run the reference; start the engines, the database and gunicorn; run the rounds."""
    secret = secrets.token_urlsafe(48)
    results: list[RoundResult] = []
    reference = run_reference(args.patients, args.rounds) if args.reference else None
    with contextlib.ExitStack() as stack:
        tmp, server_url, redis_url = bench_engines(stack, "accept-storm-", args.redis_db)
        database_url = stack.enter_context(
            bench_database(server_url, redis_url, secret, args.keep_db, name=DATABASE)
        )
        log = tmp / "gunicorn.log"
        base_url = stack.enter_context(
            gunicorn_server(
                database_url,
                redis_url,
                secret,
                workers=args.workers,
                threads=args.threads,
                log_path=log,
                worker_class=args.worker_class,
            )
        )
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"accept storm: {args.patients} patients x {args.rounds} rounds; gunicorn "
            f"{args.worker_class} {args.workers} workers x {args.threads} threads at {base_url}; "
            f"{os.cpu_count()} CPUs, load {load}",
            flush=True,
        )
        probe(f"{base_url}/livez", args.patients, args.patients)  # warm-up
        for number in range(1, args.warmup + 1):
            # Each worker process compiles its templates and SQL on first use, once after
            # a deploy: shown, but left out of the figures (the reference has none to do).
            warm = run_round(number, base_url, args.patients, args.patients, database_url)
            print(f"warm-up {number}/{args.warmup} (not counted):", end=" ")
            print_round(warm, args.warmup)
            if warm.invariant or warm.accept.statuses["5xx"]:
                results.append(warm)  # a broken warm-up round is still a failure
        for number in range(1, args.rounds + 1):
            results.append(
                run_round(number, base_url, args.patients, args.probe_requests, database_url)
            )
            print_round(results[-1], args.rounds)
        if any(r.accept.statuses["5xx"] for r in results):
            print("\n--- gunicorn log (tail) ---\n" + log_tail(log), file=sys.stderr)
    return results, reference


def main(argv: list[str] | None = None) -> int:
    """Run the bench; exit status 1 if any round broke the invariant or answered 5xx."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200, help="simultaneous accepts")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--warmup", type=int, default=1, help="uncounted rounds first (workers compile)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--probe-requests", type=int, default=2000, help="GETs per probe")
    parser.add_argument("--redis-db", type=int, default=15, help="Redis db for the bench's jobs")
    parser.add_argument("--keep-db", action="store_true", help=f"keep the {DATABASE} database")
    parser.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="skip the reference storm (../shared/bench-ref) run first for the ratio",
    )
    parser.add_argument(
        "--worker-class", default="gthread", help="gunicorn worker class (gthread, sync, gevent)"
    )
    args = parser.parse_args(argv)
    if not 2 <= args.patients <= 1000 or not 1 <= args.rounds <= 50:
        parser.error("--patients must be 2..1000 and --rounds 1..50")
    if not 1 <= args.probe_requests <= 100_000:
        parser.error("--probe-requests must be 1..100000")

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results, reference = run(args)
    print_summary(results, args.patients)
    print_ratio(results, reference)
    failed = any(r.invariant or r.accept.statuses["5xx"] for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
