"""Signed Twilio callbacks with odd values: a clean 4xx or a quiet 204, never a 500.

A valid signature proves Twilio (or whoever holds the auth token) sent the request,
not that every value is sane: the attempt hint is our own query parameter, and
PostgreSQL refuses a NUL byte in any text column.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db
from portal.models import DeliveryEvent
from portal.models.enums import AttemptStatus
from tests.notify.conftest import Providers, drain
from tests.notify.test_sending import chain, offer_notification
from tests.notify.test_webhooks import signed_post, text
from tests.patient.conftest import Scene

SMS_STATUS = "/webhooks/twilio/sms-status"
VOICE_STATUS = "/webhooks/twilio/voice-status"


def _events() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryEvent))


@pytest.mark.parametrize("attempt", ["²", "9" * 23, "0", "-1", "1e3", "", "٣"])
def test_a_bad_attempt_hint_is_ignored(
    scene: Scene, providers: Providers, client: FlaskClient, attempt: str
) -> None:
    notification = offer_notification(scene)
    drain()
    sid = notification.attempts[0].provider_id
    assert sid

    response = signed_post(
        client,
        f"{SMS_STATUS}?attempt={attempt}",
        {"MessageSid": sid, "MessageStatus": "delivered"},
    )

    assert response.status_code == 204
    assert chain(notification) == [("sms", "delivered")]  # found by its provider id instead


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (SMS_STATUS, {"MessageSid": "SM\x00123", "MessageStatus": "delivered"}),
        (SMS_STATUS, {"MessageSid": "SM123", "MessageStatus": "deliv\x00ered"}),
        (SMS_STATUS, {"MessageSid": "SM" + "1" * 5000, "MessageStatus": "delivered"}),
        (SMS_STATUS, {"MessageSid": "SM 1; DROP", "MessageStatus": "delivered"}),
        (VOICE_STATUS, {"CallSid": "CA\x00", "CallStatus": "completed"}),
        (f"{SMS_STATUS}?attempt=1\x00", {"MessageSid": "SM1", "MessageStatus": "sent"}),
        ("/webhooks/twilio/sms-inbound", {"MessageSid": "SM\x00", "From": "+1", "Body": "YES"}),
    ],
    ids=[
        "nul-sid",
        "nul-status",
        "huge-sid",
        "odd-sid",
        "nul-call-sid",
        "nul-attempt",
        "nul-inbound-sid",
    ],
)
def test_a_malformed_provider_value_is_refused(
    providers: Providers, client: FlaskClient, path: str, params: dict[str, str]
) -> None:
    response = signed_post(client, path, params)
    assert response.status_code == 400
    assert _events() == 0


@pytest.mark.parametrize("field", ["From", "Body", "OptOutType", "To", "ErrorCode"])
def test_a_nul_byte_in_an_inbound_text_is_refused(
    scene: Scene, providers: Providers, client: FlaskClient, field: str
) -> None:
    params = {"MessageSid": "SMnul", "From": scene.patient_a.phone_e164, "Body": "YES"}
    params[field] = params.get(field, "x") + "\x00"
    response = signed_post(client, "/webhooks/twilio/sms-inbound", params)
    assert response.status_code == 400
    assert _events() == 0


@pytest.mark.parametrize("code", ["²", "9" * 23, "abc", "-30008"])
def test_an_odd_error_code_still_fails_the_attempt_over(
    scene: Scene, providers: Providers, client: FlaskClient, code: str
) -> None:
    notification = offer_notification(scene)
    drain()
    attempt = notification.attempts[0]
    response = signed_post(
        client,
        f"{SMS_STATUS}?attempt={attempt.id}",
        {"MessageSid": attempt.provider_id, "MessageStatus": "failed", "ErrorCode": code},
    )
    assert response.status_code == 204
    db.session.refresh(attempt)
    assert attempt.status == AttemptStatus.FAILED
    assert attempt.failure_reason == "provider reported failed"  # the code was not a code


def test_a_normal_inbound_text_still_works(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    response = text(client, scene.patient_a.phone_e164, "HELP")
    assert response.status_code == 200
