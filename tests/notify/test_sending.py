"""Exactly-once sending, provider errors, and receipts that come twice or out of order."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue

from portal.db import db, now_utc
from portal.models import DeliveryEvent, Notification
from portal.models.enums import AttemptStatus, NotificationStatus, Purpose
from portal.queue import redis_connection
from portal.services.notify import queue_notification, sending
from tests.fakes.smtp_server import free_port
from tests.fakes.twilio_server import Behaviour
from tests.notify.conftest import Providers, deliver_all, drain, post_callback
from tests.patient.conftest import Scene


def offer_notification(scene: Scene) -> Notification:
    notification = queue_notification(
        scene.patient_a, Purpose.OFFER, f"offer:{scene.offer_a.id}", offer_id=scene.offer_a.id
    )
    assert notification is not None
    db.session.commit()
    return notification


def chain(notification: Notification) -> list[tuple[str, str]]:
    db.session.refresh(notification)
    return [(a.channel.value, a.status.value) for a in notification.attempts]


def test_a_duplicated_or_retried_job_sends_once(scene: Scene, providers: Providers) -> None:
    notification = offer_notification(scene)
    attempt_id = notification.attempts[0].id

    assert sending.send_attempt(attempt_id) == sending.Outcome.SENT
    assert sending.send_attempt(attempt_id) is None
    assert sending.send_attempt(attempt_id) is None
    assert len(providers.twilio.created) == 1


def test_the_same_event_is_queued_once(scene: Scene) -> None:
    first = queue_notification(scene.patient_a, Purpose.OFFER, "offer:x", offer_id=scene.offer_a.id)
    again = queue_notification(scene.patient_a, Purpose.OFFER, "offer:x", offer_id=scene.offer_a.id)
    assert first is not None and again is None


def test_a_transient_error_is_retried_later_on_the_same_channel(
    scene: Scene, providers: Providers
) -> None:
    providers.twilio.script(scene.patient_a.phone_e164, Behaviour("fail", 429, 20429))
    notification = offer_notification(scene)
    attempt_id = notification.attempts[0].id

    assert sending.send_attempt(attempt_id, retry_delay=10) == sending.Outcome.RETRY
    assert chain(notification) == [("sms", "queued")]
    attempt = notification.attempts[0]
    assert attempt.not_before > now_utc() + timedelta(seconds=5)
    assert attempt.failure_reason.startswith("will retry: Twilio error 20429")

    assert sending.send_attempt(attempt_id, now_utc() + timedelta(seconds=10)) == "sent"
    assert chain(notification) == [("sms", "sent")]
    assert len(providers.twilio.created) == 1


def test_out_of_retries_a_transient_error_moves_to_the_next_channel(
    scene: Scene, providers: Providers, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "TWILIO_API_BASE", f"http://127.0.0.1:{free_port()}")
    app.extensions.pop("portal_twilio", None)
    notification = offer_notification(scene)
    drain()

    assert chain(notification) == [("sms", "failed"), ("email", "delivered")]
    assert notification.attempts[0].failure_reason == "Twilio unreachable (connection refused)"


@pytest.mark.parametrize(
    "behaviour",
    [Behaviour("accept_then_500"), Behaviour("timeout", delay=2.5)],
    ids=["accept-then-500", "read-timeout"],
)
def test_an_unknown_outcome_is_never_resent_on_the_same_channel(
    scene: Scene, providers: Providers, client: FlaskClient, behaviour: Behaviour
) -> None:
    providers.twilio.script(scene.patient_a.phone_e164, behaviour)
    notification = offer_notification(scene)

    assert drain() == [sending.Outcome.SENT]  # waiting for a receipt, not retried
    assert "may have been accepted" in notification.attempts[0].failure_reason or (
        "response lost" in notification.attempts[0].failure_reason
    )
    deliver_all(client, providers.twilio)  # the message did go out: its receipts match

    assert chain(notification) == [("sms", "delivered")]
    assert len(providers.twilio.created) == 1
    assert notification.attempts[0].provider_id == providers.twilio.created[0].sid


def test_a_worker_dying_mid_send_escalates_instead_of_resending(
    scene: Scene, providers: Providers
) -> None:
    notification = offer_notification(scene)
    attempt_id = notification.attempts[0].id
    assert sending.claim(attempt_id, now_utc()) is not None
    db.session.commit()  # ... and the worker is killed here

    assert sending.stranded_attempt_ids(now_utc()) == []
    later = now_utc() + sending.STRANDED_AFTER + timedelta(seconds=1)
    assert sending.stranded_attempt_ids(later) == [attempt_id]
    assert sending.resolve_stranded(attempt_id, later) is True
    drain(later)

    assert chain(notification) == [("sms", "timed_out"), ("email", "delivered")]
    assert "outcome unknown" in notification.attempts[0].failure_reason
    assert providers.twilio.created == []


def test_receipts_twice_and_out_of_order_never_move_backwards(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    statuses = ("delivered", "sent", "delivered", "sent", "failed", "undelivered")
    providers.twilio.script(scene.patient_a.phone_e164, Behaviour(callbacks=statuses))
    notification = offer_notification(scene)
    drain()

    assert deliver_all(client, providers.twilio) == [204] * len(statuses)

    assert chain(notification) == [("sms", "delivered")]
    assert notification.status == NotificationStatus.DELIVERED
    kept = db.session.scalars(sa.select(DeliveryEvent.status).order_by(DeliveryEvent.id)).all()
    assert kept == ["delivered", "sent", "failed", "undelivered"]  # every distinct event kept


def test_a_receipt_overtaking_the_api_response_still_counts(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    notification = offer_notification(scene)
    attempt_id = notification.attempts[0].id
    sending.claim(attempt_id, now_utc())
    db.session.commit()  # the request is in flight; Twilio's receipt arrives first
    url = f"http://portal.test/webhooks/twilio/sms-status?attempt={attempt_id}"
    receipt = providers.twilio.signed(url, {"MessageSid": "SM1", "MessageStatus": "delivered"})

    assert post_callback(client, receipt) == 204
    assert sending._record_sent(attempt_id, "SM1", final=False) == sending.Outcome.SENT

    assert chain(notification) == [("sms", "delivered")]
    assert notification.attempts[0].provider_id == "SM1"


def test_dispatch_reenqueues_attempts_whose_job_was_lost(scene: Scene) -> None:
    from jobs.notify import dispatch_due

    notification = offer_notification(scene)
    queue = Queue("notifications", connection=redis_connection())
    queue.empty()  # as if Redis had lost the job
    later = now_utc() + timedelta(minutes=1)

    assert dispatch_due(later)["enqueued"] == 1
    assert queue.job_ids == [f"notify-attempt-{notification.attempts[0].id}"]
    assert dispatch_due(later)["enqueued"] == 0  # its job is waiting: no duplicate


def test_an_unrenderable_message_fails_over_instead_of_stranding(
    scene: Scene, providers: Providers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal.services.notify import sending as module

    def broken(*args: object) -> None:
        raise LookupError("template missing")

    monkeypatch.setattr(module, "render_message", broken)
    notification = offer_notification(scene)
    drain()

    assert chain(notification)[0] == ("sms", "failed")
    assert notification.attempts[0].failure_reason == "message could not be rendered"
    assert AttemptStatus(chain(notification)[-1][1]) == AttemptStatus.SENT  # manual task
