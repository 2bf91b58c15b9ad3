"""One soak run: start a whole deployment, drive it, break it on a schedule, check it.

The deployment is the soak's own: a private PostgreSQL cluster and redis-server in a
temporary directory (the machine's shared servers are never touched), gunicorn, two
``portal worker`` processes, ``portal cron``, and loopback fakes of Twilio, SMTP and
Stripe. See ``docs/operations.md`` ("Soak test") for what it injects and checks.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa

from portal.queue import QUEUES
from tests.fakes.redis_server import PrivateRedis
from tests.fakes.smtp_server import SmtpServer, free_port
from tests.fakes.stripe_server import FakeStripe
from tests.soak.checker import KEPT_WITHOUT_BOOKING, Tally, check, tally_line
from tests.soak.cluster import PORTAL, ROOT, Cluster
from tests.soak.engines import PrivatePostgres
from tests.soak.workload import FROM_NUMBER, ChaoticTwilio, Clients, Stats, World, phone

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "soak-auth-token-0123456789abcdef"
STRIPE_WEBHOOK_SECRET = "whsec_soak_secret"
SEED_PATIENTS = 20


@dataclass
class Result:
    line: str
    ok: bool
    tally: Tally
    faults: Counter[str] = field(default_factory=Counter)
    stats: Stats | None = None
    logdir: Path | None = None
    exits: dict[str, list[int]] = field(default_factory=dict)


class Faults:
    """Inject one fault after another, spread over the run, until ``stop`` is set."""

    def __init__(
        self,
        cluster: Cluster,
        redis: PrivateRedis,
        postgres: PrivatePostgres,
        twilio: ChaoticTwilio,
        smtp: SmtpServer,
        seconds: float,
    ) -> None:
        self.cluster, self.redis, self.postgres = cluster, redis, postgres
        self.twilio, self.smtp = twilio, smtp
        self.seconds = seconds
        self.burst: Callable[[], None] | None = None
        self.outage = min(30.0, max(8.0, seconds / 8))
        self.injected: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._timers: list[threading.Timer] = []

    def schedule(self) -> list[Callable[[], None]]:
        return [
            self.web_worker_kill9,
            self.rq_worker_kill9_mid_job,
            self.provider_outage,
            self.redis_down,
            self.cron_kill9,
            self.rq_worker_kill9_idle,
            self.postgres_restart,
            self.work_horse_kill9,
            self.two_crons,
            self.redis_restart_empty,
            self.web_worker_kill9,
        ]

    def _run(self) -> None:
        faults = self.schedule()
        gap = max(4.0, min(25.0, self.seconds / (len(faults) + 1)))
        self.stop.wait(gap / 2)
        while not self.stop.is_set():
            for fault in faults:
                if self.stop.is_set():
                    break
                fault()
                self.injected[fault.__name__] += 1
                self.stop.wait(gap)

    def start(self) -> None:
        self.thread.start()

    def heal(self) -> None:
        """Stop injecting and put everything back (Redis and PostgreSQL up, one cron)."""
        self.stop.set()
        self.thread.join(timeout=120)
        for timer in self._timers:
            timer.cancel()
        if "cron-2" in self.cluster.processes:
            self.cluster.remove("cron-2")
        self.twilio.outage_until = 0.0
        self.smtp.handler.reject_data = None
        if self.redis.process is None:
            self.redis.start()

    # --- the faults -----------------------------------------------------------------

    def web_worker_kill9(self) -> None:
        """A gunicorn worker dies while requests are in flight (a burst keeps it busy)."""
        if self.burst is not None:
            threading.Thread(target=self.burst, daemon=True).start()
            time.sleep(0.15)
        self.cluster.kill9_child("web")

    def _busy_worker(self, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in ("worker-1", "worker-2"):
                if self.cluster.has_child(name):
                    return name
            time.sleep(0.05)
        return random.choice(("worker-1", "worker-2"))

    def rq_worker_kill9_mid_job(self) -> None:
        """A whole worker and its work-horse, during a job (often a provider call)."""
        self.cluster.kill9(self._busy_worker())

    def rq_worker_kill9_idle(self) -> None:
        """A worker between jobs: the jobs it had dequeued or scheduled are its to lose."""
        self.cluster.kill9(random.choice(("worker-1", "worker-2")))

    def work_horse_kill9(self) -> None:
        self.cluster.kill9_child(self._busy_worker())

    def redis_down(self) -> None:
        """Redis stopped for a while; it comes back empty (no persistence)."""
        self.redis.stop()
        self.stop.wait(self.outage)
        self.redis.start()

    def redis_restart_empty(self) -> None:
        self.redis.stop()
        time.sleep(0.5)
        self.redis.start()

    def postgres_restart(self) -> None:
        """PostgreSQL crashes (immediate stop) and comes back after recovery."""
        self.postgres.crash()
        time.sleep(2)
        self.postgres.start()

    def provider_outage(self) -> None:
        """Twilio accepts but answers after the client's timeout; SMTP refuses for a while."""
        duration = min(20.0, self.outage)
        self.twilio.outage_until = time.monotonic() + duration
        self.smtp.handler.reject_data = "451 4.3.0 Try again later"
        timer = threading.Timer(duration, self._smtp_back)
        self._timers.append(timer)
        timer.start()

    def _smtp_back(self) -> None:
        self.smtp.handler.reject_data = None

    def cron_kill9(self) -> None:
        self.cluster.kill9("cron")

    def two_crons(self) -> None:
        """A second cron process runs beside the first for a while (a botched deploy)."""
        if "cron-2" in self.cluster.processes:
            return
        self.cluster.add("cron-2", [PORTAL, "cron"])
        timer = threading.Timer(min(30.0, self.outage * 1.5), self._end_second_cron)
        self._timers.append(timer)
        timer.start()

    def _end_second_cron(self) -> None:
        if "cron-2" in self.cluster.processes:
            self.cluster.remove("cron-2")


def _seed(database_url: str, redis_url: str, secret: str, base_url: str) -> tuple[World, str]:
    """Migrate, then the clinic: one location, three practitioners, two services."""
    from flask_migrate import upgrade

    from portal import create_app
    from portal.db import db
    from portal.models import OfferPolicy
    from portal.models.enums import OfferMode
    from portal.services.api_tokens import create_api_token
    from portal.services.audit import SYSTEM
    from portal.services.settings import set_setting
    from tests import factories as f

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret,
            "PUBLIC_BASE_URL": base_url,
        }
    )
    with app.app_context():
        upgrade(directory=str(Path(app.root_path).parent / "migrations"))
        location = f.location(name="Soak Clinic")
        services = [
            f.service(name="Soak Botox", category="injectables", duration_minutes=30),
            f.service(name="Soak Facial", category="facials", duration_minutes=45),
        ]
        practitioners = [f.practitioner(location=location) for _ in range(3)]
        for practitioner in practitioners:
            practitioner.services = list(services)
        for category, mode in (("injectables", OfferMode.WAVES), ("facials", OfferMode.SEQUENTIAL)):
            policy = db.session.scalar(sa.select(OfferPolicy).filter_by(category=category))
            if policy is None:
                policy = OfferPolicy(category=category, mode=mode)
                db.session.add(policy)
            policy.mode, policy.wave_size = mode, 2
            policy.window_minutes = policy.near_window_minutes = 1
            policy.cutoff_minutes = 30
        set_setting("quiet_hours", {"start": "00:00", "end": "00:00"})
        set_setting("receipt_timeout_minutes", {"sms": 0.5, "voice": 0.5, "email": 0.5})
        set_setting("hold_seconds", 45)
        set_setting(
            "daily_purpose_cap", {"default": 1000, "slot_filled": 1000, "confirmation": 1000}
        )
        set_setting("non_urgent_daily_cap", 1000)
        set_setting("non_urgent_weekly_cap", 1000)
        set_setting("no_show_grace_minutes", 0)
        set_setting("reminder_cadence_hours", {"default": [24, 3]})  # 3 h: due within the run
        patient_ids = []
        for i in range(SEED_PATIENTS):
            patient = f.patient(
                name=f"Soak Regular {i}",
                phone_raw=phone(i),
                phone_e164=phone(i),
                email=f"regular{i}@example.test",
                deposit_required=i % 3 == 0,
            )
            patient_ids.append(patient.id)
            for service in services:
                f.waitlist_entry(patient=patient, service=service, location=location)
        _, token = create_api_token("soak", SYSTEM)
        db.session.commit()
        world = World(
            practitioner_ids=[p.id for p in practitioners],
            service_ids=[s.id for s in services],
            location_id=location.id,
            patient_ids=patient_ids,
        )
        db.engine.dispose()
    return world, token


def _wait_answering(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/livez", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /livez")


def _sweeper(cluster: Cluster, stop: threading.Event, stats: Stats) -> None:
    """The front desk's "sweep now" (``portal sweep-no-shows``) every 20 s, beside cron."""
    while not stop.wait(20):
        try:
            done = cluster.run_once("sweep-no-shows", "--grace-minutes", "0", timeout=60)
        except Exception:
            stats.count("sweep_no_shows", None)
            continue
        # 75 (EX_TEMPFAIL): the database was restarting, the command's 503.
        status = {0: 200, 75: 503}.get(done.returncode, 500)
        stats.count("sweep_no_shows", status)
        if status != 200:  # what it said, for whoever reads the logs
            with (cluster.logdir / "sweep-no-shows.log").open("ab") as log:
                log.write(f"--- exit {done.returncode}\n".encode() + done.stdout + done.stderr)


def _waiting_jobs(redis_url: str) -> set[str]:
    """Ids of the jobs still queued, scheduled or running in Redis."""
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(redis_url)
    try:
        ids: set[str] = set()
        for name in QUEUES:
            queue = Queue(name, connection=connection)
            ids.update(queue.job_ids)
            ids.update(queue.scheduled_job_registry.get_job_ids())
            ids.update(queue.started_job_registry.get_job_ids())
        return ids
    finally:
        connection.close()


def _settle(redis_url: str, database_url: str, most: float, least: float = 30.0) -> None:
    """Wait ``least`` seconds, then until nothing waits to run now and no paid deposit
    awaits the refund ``settle_payments`` redoes when Redis lost its job (at most
    ``most``: what is still undone then is the checker's to count)."""
    from redis import Redis
    from rq import Queue

    started = time.monotonic()
    connection = Redis.from_url(redis_url)
    engine = sa.create_engine(database_url)
    try:
        while time.monotonic() - started < most:
            time.sleep(2)
            if time.monotonic() - started < least:
                continue
            backlog = sum(Queue(name, connection=connection).count for name in QUEUES)
            if backlog == 0 and not _refunds_awaited(engine):
                return
    finally:
        connection.close()
        engine.dispose()


def _refunds_awaited(engine: sa.Engine) -> bool:
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(KEPT_WITHOUT_BOOKING)).first() is not None
    except sa.exc.SQLAlchemyError:
        return True  # not settled while the database does not answer


def run_soak(seconds: float, settle: float | None = None, keep: Path | None = None) -> Result:
    """Run the soak for ``seconds`` of workload under faults; check; return the tally."""
    base_dir = Path(tempfile.mkdtemp(prefix="portal-soak-")) if keep is None else keep
    base_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(base_dir, 0o755)  # noqa: S103 (the postgres user must reach its cluster)
    logdir = base_dir / "logs"
    logdir.mkdir(exist_ok=True)
    # A refund Redis lost is redone by settle_payments within its grace and one period
    # (about 90 s): a settle can outlast that.
    settle = settle if settle is not None else min(150.0, max(120.0, seconds / 4))
    postgres = PrivatePostgres(base_dir).init().start()
    database_url = postgres.create_database("portal")
    redis = PrivateRedis(base_dir).start()
    web_port = free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    twilio = ChaoticTwilio(ACCOUNT_SID, AUTH_TOKEN, deliver_to=base_url).start()
    smtp = SmtpServer().start()
    stripe = FakeStripe(webhook_secret=STRIPE_WEBHOOK_SECRET).start()
    secret = secrets.token_urlsafe(48)
    cluster: Cluster | None = None
    passed = False
    try:
        world, token = _seed(database_url, redis.url, secret, base_url)
        for noisy in ("mail.log", "alembic", "portal", "rq"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "SECRET_KEY": secret,
            "PUBLIC_BASE_URL": base_url,
            "RATELIMIT_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            # This checkout's code, even when the venv's editable install points elsewhere.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_BASE": twilio.base_url,
            "TWILIO_TIMEOUT_SECONDS": "3",
            "SMTP_URL": smtp.url,
            "SMTP_TIMEOUT_SECONDS": "5",
            "STRIPE_SECRET_KEY": "sk_test_soak",
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            "STRIPE_API_BASE": stripe.base_url,
            "STRIPE_TIMEOUT_SECONDS": "5",
        }
        cluster = Cluster(env, logdir, web_port)
        cluster.start_all()
        _wait_answering(base_url)
        stats = Stats()
        clients = Clients(
            base_url, token, world, twilio, smtp, stripe, stats, AUTH_TOKEN, SEED_PATIENTS
        )
        faults = Faults(cluster, redis, postgres, twilio, smtp, seconds)
        faults.burst = clients.burst
        stop_sweeps = threading.Event()
        sweeper = threading.Thread(target=_sweeper, args=(cluster, stop_sweeps, stats), daemon=True)
        clients.start()
        faults.start()
        sweeper.start()
        time.sleep(seconds)
        faults.heal()
        clients.join()
        stop_sweeps.set()
        sweeper.join(timeout=90)
        _settle(
            redis.url, database_url, settle
        )  # the sweeps and receipts finish what the faults interrupted
        twilio.wait_idle(timeout=30)
        engine = sa.create_engine(database_url)
        try:
            tally = check(engine, twilio, smtp, stripe, _waiting_jobs(redis.url))
        finally:
            engine.dispose()
        exits = cluster.unplanned_exits()
        #: A 500 is a bug whatever the fault; a process exit nobody caused is a crash; a
        #: run of 5 minutes or more that made no no-show or sent no reminder did not test
        #: those promises at all.
        unexercised = [
            name
            for name in ("no_shows", "reminders_sent")
            if seconds >= 300 and not tally.counts[name]
        ]
        broken = {
            "http_500": stats.outcomes["500"],
            "unplanned_exits": sum(len(v) for v in exits.values()),
            "unexercised": len(unexercised),
        }
        extra = {
            **broken,
            "http_503": stats.outcomes["503"],
            "http_conn_errors": stats.outcomes["err"],
            "callbacks_posted": twilio.delivered,
            "provider_sends": len(twilio.created) + len(smtp.handler.messages),
        }
        line = tally_line(sum(faults.injected.values()), stats.operations, tally, extra)
        ok = passed = not tally.violations and not any(broken.values())
        return Result(line, ok, tally, faults.injected, stats, logdir, exits)
    finally:
        if cluster is not None:
            cluster.stop_all()
        twilio.stop()
        smtp.stop()
        stripe.stop()
        redis.stop()
        postgres.stop()
        if keep is None and passed:
            shutil.rmtree(base_dir, ignore_errors=True)


def describe(result: Result) -> str:
    """Details for a human: the faults injected, what the clients did, examples."""
    lines = [f"faults: {dict(result.faults)}"]
    if result.stats is not None:
        lines.append(f"operations: {dict(sorted(result.stats.ops.items()))}")
        lines.append(f"outcomes: {dict(result.stats.outcomes)}")
        if result.stats.server_errors:
            lines.append(f"5xx: {Counter(result.stats.server_errors).most_common(10)}")
    for name, examples in result.tally.examples.items():
        if name in result.tally.violations:
            lines.append(f"{name}: {examples}")
    crashed = {name: codes for name, codes in result.exits.items() if codes}
    if crashed:
        lines.append(f"unplanned exits (exit codes): {crashed}")
    if result.logdir and result.logdir.exists():
        lines.append(f"logs: {result.logdir}")
    return "\n".join(lines)


__all__ = ["Result", "describe", "run_soak"]
