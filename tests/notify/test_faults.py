"""Faults with real RQ worker processes and a real (private) Redis.

K messages go out while: two workers are killed with ``kill -9`` in the middle of a
provider call; Redis is stopped (losing every queued job) while new messages are
written, then started again; Twilio answers some requests slowly, with a 429, with
a 500 after accepting, or with 21610, and posts every receipt twice, shuffled. The
dispatcher runs as ``portal cron`` would. At the end every message must be delivered
or in the manual outreach queue, none lost, none sent twice on any channel.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from jobs.notify import dispatch_due
from portal.db import db, now_utc
from portal.models import Notification, NotificationAttempt, OutreachTask
from portal.models.enums import Channel, NotificationStatus, Purpose
from portal.services.notify import queue_notification, sending
from portal.services.settings import set_setting
from tests import factories as f
from tests.conftest import TEST_SECRET
from tests.fakes.live_server import LiveServer
from tests.fakes.redis_server import PrivateRedis
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.twilio_server import Behaviour, FakeTwilio
from tests.notify.conftest import ACCOUNT_SID, AUTH_TOKEN, provider_config

K_FIRST, K_DURING_OUTAGE = 18, 8
ROOT = Path(__file__).resolve().parents[2]


def phone(i: int) -> str:
    return f"+1212555{2000 + i:04d}"


class Workers:
    """Worker processes, each in its own session so ``kill -9`` takes the work-horse too."""

    def __init__(self, config: dict[str, object], logdir: Path) -> None:
        self.env = {
            **os.environ,
            "PORTAL_TEST_CONFIG": json.dumps(config),
            "SECRET_KEY": TEST_SECRET,
        }
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(self, n: int = 1) -> None:
        for _ in range(n):
            self.started += 1
            log = open(self.logdir / f"worker-{self.started}.log", "wb")  # noqa: SIM115
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.fakes.worker_main"],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of every worker's log (for a failing assertion's message)."""
        parts = []
        for path in sorted(self.logdir.glob("worker-*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def kill_all(self) -> None:
        """``kill -9`` every worker with its work-horse (RQ puts horses in their own group)."""
        for proc in self.procs:
            for pid in [proc.pid, *descendants(proc.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def restart_dead(self) -> int:
        dead = [p for p in self.procs if p.poll() is not None]
        for proc in dead:
            self.procs.remove(proc)
        self.start(len(dead))
        return len(dead)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_for(condition, timeout: float, step: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def queue_confirmations(practitioner, service, indexes: range) -> list[int]:  # type: ignore[no-untyped-def]
    ids = []
    start = now_utc() + timedelta(days=2)
    for i in indexes:
        patient = f.patient(
            name=f"Fault Patient {i}",
            phone_raw=phone(i),
            phone_e164=phone(i),
            email=f"fault{i}@example.test",
        )
        if i == 6:
            patient.email = None  # texts fail, no email: a call, then the manual queue
        slot = f.slot(
            start_at=start + timedelta(minutes=30 * i), practitioner=practitioner, service=service
        )
        appointment = f.appointment(slot=slot, patient=patient)
        notification = queue_notification(
            patient, Purpose.CONFIRMATION, f"fault:{i}", appointment_id=appointment.id
        )
        db.session.commit()  # one transaction per event, as in the app
        ids.append(notification.id)
    return ids


@pytest.fixture
def world(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    redis = PrivateRedis(tmp_path).start()
    live = LiveServer(app).start()
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, deliver_to=live.url).start()
    twilio.default = Behaviour(duplicate=True, shuffle=True)
    smtp = SmtpServer().start()
    config = {**provider_config(twilio, smtp), "REDIS_URL": redis.url}
    for key, value in config.items():
        monkeypatch.setitem(app.config, key, value)
    for name in ("portal_redis", "portal_twilio"):
        app.extensions.pop(name, None)
    monkeypatch.setattr(sending, "STRANDED_AFTER", timedelta(seconds=6))
    monkeypatch.setattr(sending, "ENQUEUE_GRACE", timedelta(seconds=1))
    worker_config = {
        **config,
        "TWILIO_TIMEOUT_SECONDS": 10,  # the slow answers (8 s) must still be in flight at the kill
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "PUBLIC_BASE_URL": app.config["PUBLIC_BASE_URL"],
    }
    workers = Workers(worker_config, tmp_path)
    try:
        yield redis, twilio, smtp, workers
    finally:
        workers.stop()
        twilio.wait_idle(timeout=5)
        twilio.stop()
        smtp.stop()
        live.stop()
        redis.stop()
        for name in ("portal_redis", "portal_twilio"):
            app.extensions.pop(name, None)


def test_no_message_is_lost_or_sent_twice(world, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    redis, twilio, smtp, workers = world
    set_setting("receipt_timeout_minutes", {"sms": 0.25, "voice": 0.25, "email": 0.25})
    practitioner, service = f.practitioner(), f.service()
    db.session.commit()
    # Per-patient scripts: 0 and 1 are slow (the workers die during their calls).
    twilio.script(phone(0), Behaviour(delay=8, callbacks=("delivered",)))  # receipt still comes
    twilio.script(phone(1), Behaviour(delay=8, callbacks=()))  # silent: outcome unknown
    twilio.script(phone(3), Behaviour(callbacks=("sent", "undelivered"), duplicate=True))
    twilio.script(phone(4), Behaviour("fail", 400, 21610))
    twilio.script(phone(5), Behaviour("accept_then_500", duplicate=True, shuffle=True))
    twilio.script(phone(6), Behaviour(callbacks=("failed",)), Behaviour(callbacks=("no-answer",)))
    twilio.script(phone(7), Behaviour("fail", 429, 20429))  # then the default: RQ retries it
    started = time.monotonic()

    ids = queue_confirmations(practitioner, service, range(K_FIRST))
    workers.start(2)
    assert wait_for(lambda: twilio.sends_to(phone(0)) and twilio.sends_to(phone(1)), 20)
    workers.kill_all()  # kill -9 both, each in the middle of a provider call
    killed = len(workers.procs)
    workers.procs.clear()
    workers.start(2)

    assert wait_for(lambda: twilio.sends_to(phone(K_FIRST - 1)), 20)
    redis.stop()  # every queued and scheduled job is lost with it
    ids += queue_confirmations(practitioner, service, range(K_FIRST, K_FIRST + K_DURING_OUTAGE))
    time.sleep(1.5)
    redis.start()
    restarted = workers.restart_dead()

    def settled() -> bool:
        dispatch_due()  # what `portal cron` runs every 30 s
        db.session.commit()
        pending = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.id.in_(ids), Notification.status == NotificationStatus.PENDING)
        )
        return pending == 0

    assert wait_for(settled, 45, step=0.5), "messages still pending"
    twilio.wait_idle(timeout=5)
    db.session.expire_all()

    notifications = db.session.scalars(
        sa.select(Notification).where(Notification.id.in_(ids))
    ).all()
    attempts = db.session.scalars(
        sa.select(NotificationAttempt).where(NotificationAttempt.notification_id.in_(ids))
    ).all()
    channel_of = {a.id: (a.notification_id, a.channel) for a in attempts}
    sends: Counter[tuple[int, Channel]] = Counter()
    for created in twilio.created:
        sends[channel_of[created.attempt_id]] += 1
    for message in smtp.handler.messages:
        sends[channel_of[int(message["X-Portal-Attempt"])]] += 1
    tasks = set(db.session.scalars(sa.select(OutreachTask.notification_id)))
    outcome = Counter(n.status.value for n in notifications)
    twice = {key: n for key, n in sends.items() if n > 1}
    lost = [n.id for n in notifications if n.status == NotificationStatus.PENDING]
    unqueued = [
        n.id
        for n in notifications
        if n.status == NotificationStatus.EXHAUSTED and n.id not in tasks
    ]
    by_channel = Counter(channel.value for (_, channel) in sends.elements())
    chains = {
        n.id: [(a.channel.value, a.status.value) for a in sorted(n.attempts, key=lambda a: a.id)]
        for n in notifications
    }
    stranded = sum("worker stopped mid-send" in (a.failure_reason or "") for a in attempts)
    with capsys.disabled():
        print(
            f"\n[notify faults] K={len(ids)} in {time.monotonic() - started:.1f}s: "
            f"delivered={outcome['delivered']} manual={outcome['exhausted']} "
            f"lost={len(lost)} sent_twice={len(twice)} "
            f"sends={dict(by_channel)} callbacks_posted={twilio.delivered} "
            f"workers_killed={killed} workers_restarted={restarted} "
            f"stranded_resolved={stranded}"
        )
    assert lost == [] and twice == {} and unqueued == []
    assert set(outcome) <= {"delivered", "exhausted"}
    assert outcome["exhausted"] == 1  # patient 6: texts failed, no email, call unanswered
    # Killed mid-call: the receipt still matched (0); no receipt, so on to email (1).
    assert chains[ids[0]] == [("sms", "delivered")]
    assert chains[ids[1]] == [("sms", "timed_out"), ("email", "delivered")]
    assert stranded == 1
