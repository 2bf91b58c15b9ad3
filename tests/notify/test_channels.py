"""Channel back-ends: which one carries a channel, SMTP settings and SMTP failures."""

from __future__ import annotations

import pytest
from flask import Flask

from portal.db import db
from portal.models import Notification, NotificationAttempt
from portal.models.enums import Channel, Purpose
from portal.services.notify import queue_notification, sending
from portal.services.notify.providers import backend_for, outbox_active
from portal.services.notify.smtp_backend import parse_smtp_url
from tests.fakes.smtp_server import free_port
from tests.notify.conftest import Providers
from tests.patient.conftest import Scene


@pytest.mark.parametrize(
    ("url", "port", "starttls", "implicit_tls", "user"),
    [
        ("smtp://mailer:s3cret@mail.example.com:587", 587, True, False, "mailer"),
        ("smtp://mail.example.com", 25, False, False, None),
        ("smtp://127.0.0.1:2525?starttls=1", 2525, True, False, None),
        ("smtp://mail.example.com:587?starttls=0", 587, False, False, None),
        ("smtps://a%40b.test:pw@mail.example.com", 465, False, True, "a@b.test"),
    ],
)
def test_smtp_url(
    url: str, port: int, starttls: bool, implicit_tls: bool, user: str | None
) -> None:
    settings = parse_smtp_url(url)
    assert (settings.port, settings.starttls, settings.implicit_tls) == (
        port,
        starttls,
        implicit_tls,
    )
    assert settings.username == user


def test_a_bad_smtp_url_is_refused() -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        parse_smtp_url("http://mail.example.com")


def test_without_credentials_everything_goes_to_the_outbox(app: Flask) -> None:
    assert outbox_active()
    assert {backend_for(c).name for c in (Channel.SMS, Channel.EMAIL, Channel.VOICE)} == {"outbox"}


def test_with_credentials_the_providers_carry_each_channel(providers: Providers) -> None:
    assert not outbox_active()
    assert [backend_for(c).name for c in (Channel.SMS, Channel.EMAIL, Channel.VOICE)] == [
        "twilio",
        "smtp",
        "twilio",
    ]


def _email_only(scene: Scene) -> Notification:
    scene.patient_a.phone_e164 = None
    notification = queue_notification(
        scene.patient_a, Purpose.OFFER, "offer:mail", offer_id=scene.offer_a.id
    )
    db.session.commit()
    return notification


def test_smtp_try_again_later_is_retried(scene: Scene, providers: Providers) -> None:
    providers.smtp.handler.reject_data = "451 4.3.0 Try again later"
    notification = _email_only(scene)
    email_id = notification.attempts[1].id

    assert sending.send_attempt(email_id, retry_delay=30) == sending.Outcome.RETRY
    email = db.session.get(NotificationAttempt, email_id)
    assert email.status == "queued" and email.failure_reason == "will retry: SMTP 451 at DATA"


def test_an_unreachable_smtp_server_is_a_transient_error(
    scene: Scene, providers: Providers, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    notification = _email_only(scene)

    email_id = notification.attempts[1].id
    outcome = sending.send_attempt(email_id, retry_delay=10)

    assert outcome == sending.Outcome.RETRY
    assert "SMTP unavailable" in db.session.get(NotificationAttempt, email_id).failure_reason
