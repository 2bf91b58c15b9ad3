"""Release to first message: from ``POST /api/v1/slots/<id>/release`` to the first offer
handed to the provider, with a running RQ worker.

Usage (from the project root)::

    .venv/bin/python bench/release_to_message.py --releases 50

Engines as in the tests (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded ones). The
portal runs under gunicorn on 127.0.0.1 and ``--rq-workers`` ``portal worker`` processes
(the production worker, with its scheduler) work the queues; messages go to the outbox backend (the
stand-in for Twilio and SMTP: a row per message handed over). Each release: a booked
slot tomorrow with ``--waiting`` waitlisted patients is released through the API; the
time runs from just before the POST to the ``created_at`` of the first outbox row of an
offer for that slot (the worker's clock is this machine's clock). Releases run one after
another. Printed: when each phase was reached (the API's answer, the first offer
written by the fill job, its send job enqueued and started, the attempt claimed), as p50
from the release, then the first message's p50, p90 and max over all releases.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from redis import Redis  # noqa: E402
from rq.exceptions import NoSuchJobError  # noqa: E402
from rq.job import Job  # noqa: E402

from bench.common import bench_database, bench_engines  # noqa: E402
from portal.db import db  # noqa: E402
from portal.models import Notification, NotificationAttempt, Offer, OutboxMessage  # noqa: E402
from portal.models.enums import AttemptStatus, Purpose, SlotStatus  # noqa: E402
from portal.queue import send_job_id  # noqa: E402
from portal.services.api_tokens import create_api_token  # noqa: E402
from portal.services.audit import SYSTEM  # noqa: E402
from tests import factories as f  # noqa: E402
from tests.e2e.server import _stop, gunicorn_server, log_tail  # noqa: E402

WAIT = 15.0  # seconds to wait for a first message before calling a release lost


def first_offer_message(slot_id: int) -> datetime | None:
    db.session.rollback()
    return db.session.scalar(
        sa.select(sa.func.min(OutboxMessage.created_at))
        .join(NotificationAttempt, NotificationAttempt.id == OutboxMessage.attempt_id)
        .join(Notification, Notification.id == NotificationAttempt.notification_id)
        .join(Offer, Offer.id == Notification.offer_id)
        .where(Offer.slot_id == slot_id, Notification.purpose == Purpose.OFFER)
    )


def first_offer_made(slot_id: int) -> datetime | None:
    return db.session.scalar(
        sa.select(sa.func.min(Offer.created_at)).where(Offer.slot_id == slot_id)
    )


def first_send_claimed(slot_id: int) -> datetime | None:
    return db.session.scalar(
        sa.select(sa.func.min(NotificationAttempt.claimed_at))
        .join(Notification, Notification.id == NotificationAttempt.notification_id)
        .join(Offer, Offer.id == Notification.offer_id)
        .where(Offer.slot_id == slot_id, Notification.purpose == Purpose.OFFER)
    )


def send_job(slot_id: int, redis: Redis) -> Job | None:
    """The RQ job that sent the slot's first offer message (its timestamps)."""
    attempt_id = db.session.scalar(
        sa.select(sa.func.min(NotificationAttempt.id))
        .join(Notification, Notification.id == NotificationAttempt.notification_id)
        .join(Offer, Offer.id == Notification.offer_id)
        .where(
            Offer.slot_id == slot_id,
            Notification.purpose == Purpose.OFFER,
            # a text skipped in the patient's quiet hours has no job: the e-mail does
            NotificationAttempt.status != AttemptStatus.SKIPPED,
        )
    )
    try:
        return Job.fetch(send_job_id(attempt_id), connection=redis) if attempt_id else None
    except NoSuchJobError:
        return None


def booked_slot_with_waitlist(waiting: int) -> int:
    slot = f.slot(status=SlotStatus.BOOKED)
    f.appointment(slot=slot)
    for _ in range(waiting):
        f.waitlist_entry(slot=slot)
    db.session.commit()
    return slot.id


@contextlib.contextmanager
def worker(database_url: str, redis_url: str, secret: str, log_path: Path):  # type: ignore[no-untyped-def]
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret,
            "PUBLIC_BASE_URL": "http://127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "worker"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            _stop(proc)  # type: ignore[arg-type]


def _ms(values: list[float]) -> str:
    """The median in ms, or n/a (RQ did not keep the job's timestamps)."""
    return f"{1000 * statistics.median(values):.0f} ms" if values else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--waiting", type=int, default=5, help="waitlisted patients per slot")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rq-workers", type=int, default=1, help="`portal worker` processes")
    parser.add_argument("--redis-db", type=int, default=15)
    args = parser.parse_args(argv)
    if not 1 <= args.releases <= 500 or not 1 <= args.waiting <= 100:
        parser.error("--releases must be 1..500 and --waiting 1..100")

    api_phase: list[float] = []
    offered: list[float] = []
    enqueued: list[float] = []
    dequeued: list[float] = []
    claimed: list[float] = []
    total: list[float] = []
    lost = 0
    with contextlib.ExitStack() as stack:
        tmp, server_url, redis_url = bench_engines(stack, "release-msg-", args.redis_db)
        secret = secrets.token_urlsafe(48)
        database_url = stack.enter_context(bench_database(server_url, redis_url, secret, False))
        _, token = create_api_token("release bench", SYSTEM)
        db.session.commit()
        base = stack.enter_context(
            gunicorn_server(
                database_url,
                redis_url,
                secret,
                workers=args.workers,
                threads=args.threads,
                log_path=tmp / "gunicorn.log",
            )
        )
        worker_log = tmp / "worker.log"
        for _ in range(args.rq_workers):
            stack.enter_context(worker(database_url, redis_url, secret, worker_log))
        session = stack.enter_context(requests.Session())
        session.headers["Authorization"] = f"Bearer {token}"
        redis = Redis.from_url(redis_url)
        stack.callback(redis.close)
        print(
            f"release to first message: {args.releases} releases, {args.waiting} waiting each; "
            f"gunicorn gthread {args.workers}x{args.threads}, {args.rq_workers} RQ worker(s); "
            "outbox backend",
            flush=True,
        )
        # Warm up: the worker's first job imports the jobs; not counted.
        warm = booked_slot_with_waitlist(args.waiting)
        session.post(f"{base}/api/v1/slots/{warm}/release", timeout=30)
        deadline = time.monotonic() + 60
        while first_offer_message(warm) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(args.releases):
            slot_id = booked_slot_with_waitlist(args.waiting)
            started = datetime.now(UTC)
            resp = session.post(f"{base}/api/v1/slots/{slot_id}/release", timeout=30)
            answered = datetime.now(UTC)
            if resp.status_code != 200:
                print(f"  release of slot {slot_id}: HTTP {resp.status_code}", file=sys.stderr)
                lost += 1
                continue
            api_phase.append((answered - started).total_seconds())
            deadline = time.monotonic() + WAIT
            first = first_offer_message(slot_id)
            while first is None and time.monotonic() < deadline:
                time.sleep(0.005)
                first = first_offer_message(slot_id)
            if first is None:
                lost += 1
                continue
            total.append((first - started).total_seconds())
            made = first_offer_made(slot_id)
            if made is not None:
                offered.append((made - started).total_seconds())
            job = send_job(slot_id, redis)
            if job is not None and job.enqueued_at and job.started_at:
                enqueued.append((job.enqueued_at.astimezone(UTC) - started).total_seconds())
                dequeued.append((job.started_at.astimezone(UTC) - started).total_seconds())
            claim = first_send_claimed(slot_id)
            if claim is not None:
                claimed.append((claim - started).total_seconds())
        if lost:
            print("\n--- worker log (tail) ---\n" + log_tail(worker_log), file=sys.stderr)
    if not total:
        print("no release produced a message")
        return 1
    ordered = sorted(total)

    def pct(p: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    print(
        f"API answer: p50 {1000 * statistics.median(api_phase):.0f} ms; first offer written "
        f"(the fill job ran): p50 {1000 * statistics.median(offered):.0f} ms; send job "
        f"enqueued: p50 {_ms(enqueued)}; started: p50 {_ms(dequeued)}; attempt claimed: p50 "
        f"{1000 * statistics.median(claimed):.0f} ms;\n"
        f"release -> first offer handed to the provider: p50 {1000 * statistics.median(total):.0f} ms"
        f" p90 {pct(0.9):.0f} ms max {1000 * ordered[-1]:.0f} ms over {len(total)} releases"
        f" ({lost} without a message within {WAIT:.0f} s); target p50 <= 1000 ms"
    )
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
