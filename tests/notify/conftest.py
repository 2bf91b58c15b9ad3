"""Fixtures for the notification tests: fake Twilio, a local SMTP server, and helpers.

Quiet hours are switched off by default (the suite runs at any hour); the quiet-hours
tests switch them back on with a fixed clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import NotificationAttempt
from portal.models.enums import AttemptStatus
from portal.services.notify import sending
from portal.services.settings import set_setting
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.twilio_server import Callback, FakeTwilio
from tests.patient.conftest import Scene, build_scene
from tests.staff.conftest import signed_in, staff  # noqa: F401 (fixtures)

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
FROM_NUMBER = "+12125550199"


@pytest.fixture(autouse=True)
def _quiet_hours_off(request: pytest.FixtureRequest) -> None:
    if "app" in request.fixturenames:
        set_setting("quiet_hours", {"start": "00:00", "end": "00:00"})
        db.session.commit()


@pytest.fixture
def portal_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the portal's INFO logs."""
    import logging

    caplog.set_level(logging.INFO, logger="portal")
    return caplog


@pytest.fixture
def scene(app: Flask) -> Scene:
    return build_scene()


@dataclass
class Providers:
    twilio: FakeTwilio
    smtp: SmtpServer


def provider_config(twilio: FakeTwilio, smtp: SmtpServer) -> dict[str, object]:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE": twilio.base_url,
        "TWILIO_TIMEOUT_SECONDS": 1.5,
        "SMTP_URL": smtp.url,
        "SMTP_TIMEOUT_SECONDS": 5,
    }


@pytest.fixture
def providers(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Providers]:
    """Point the app at a fake Twilio and a local SMTP server for one test."""
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    smtp = SmtpServer().start()
    for key, value in provider_config(twilio, smtp).items():
        monkeypatch.setitem(app.config, key, value)
    app.extensions.pop("portal_twilio", None)
    try:
        yield Providers(twilio, smtp)
    finally:
        app.extensions.pop("portal_twilio", None)
        twilio.stop()
        smtp.stop()


def drain(now: datetime | None = None, rounds: int = 10) -> list[sending.Outcome | None]:
    """Send every due queued attempt, as the worker would, until none is left."""
    outcomes = []
    for _ in range(rounds):
        db.session.commit()
        due = db.session.scalars(
            sa.select(NotificationAttempt.id)
            .where(
                NotificationAttempt.status == AttemptStatus.QUEUED,
                NotificationAttempt.not_before <= (now or now_utc()),
            )
            .order_by(NotificationAttempt.id)
        ).all()
        if not due:
            break
        outcomes += [sending.send_attempt(attempt_id, now) for attempt_id in due]
    db.session.expire_all()
    return outcomes


def post_callback(client: FlaskClient, callback: Callback) -> int:
    """Deliver a fake-Twilio callback through the test client (signed for the public URL)."""
    parts = urlsplit(callback.url)
    response = client.post(
        parts.path,
        query_string=parts.query,
        data=callback.params,
        headers={"X-Twilio-Signature": callback.signature},
    )
    return response.status_code


def deliver_all(client: FlaskClient, twilio: FakeTwilio) -> list[int]:
    """Deliver every pending callback in the order the fake produced them."""
    codes = [post_callback(client, cb) for cb in twilio.take_pending()]
    db.session.expire_all()
    return codes
