"""Twilio webhooks: signatures, inbound texts (YES/NO/STOP/START/HELP), and calls."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from portal.db import db
from portal.models import Appointment, DeliveryEvent, Offer
from portal.models.enums import OfferStatus, Purpose
from portal.services.notify import queue_notification
from tests.fakes.twilio_server import Behaviour
from tests.notify.conftest import AUTH_TOKEN, Providers, deliver_all, drain
from tests.patient.conftest import Scene

BASE = "http://portal.test"


def signed_post(
    client: FlaskClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    signed_url: str | None = None,
    signed_params: dict[str, str] | None = None,
    header: bool = True,
):
    """POST ``params`` to ``path`` with a signature over ``signed_url``/``signed_params``."""
    signature = RequestValidator(token).compute_signature(
        signed_url or BASE + path, signed_params if signed_params is not None else params
    )
    headers = {"X-Twilio-Signature": signature} if header else {}
    return client.post(path, data=params, headers=headers)


def text(client: FlaskClient, sender: str, body: str, sid: str = "SMin1", **extra: str):
    return signed_post(
        client,
        "/webhooks/twilio/sms-inbound",
        {"MessageSid": sid, "From": sender, "To": "+12125550199", "Body": body, **extra},
    )


def reply_of(response) -> str:
    match = re.search(r"<Message>(.*)</Message>", response.get_data(as_text=True), re.S)
    return match.group(1) if match else ""


# --- signatures ------------------------------------------------------------------

STATUS = "/webhooks/twilio/sms-status?attempt=1"
PARAMS = {"MessageSid": "SM123", "MessageStatus": "delivered"}


@pytest.mark.parametrize(
    "tamper",
    ["wrong token", "altered parameter", "altered url", "missing header", "no token configured"],
)
def test_a_request_twilio_did_not_sign_gets_403(
    providers: Providers, client: FlaskClient, tamper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs: dict[str, object] = {}
    if tamper == "wrong token":
        kwargs["token"] = "not-the-auth-token"
    elif tamper == "altered parameter":
        kwargs["signed_params"] = {**PARAMS, "MessageStatus": "failed"}
    elif tamper == "altered url":
        kwargs["signed_url"] = BASE + "/webhooks/twilio/sms-status?attempt=2"
    elif tamper == "missing header":
        kwargs["header"] = False
    else:
        monkeypatch.setitem(client.application.config, "TWILIO_AUTH_TOKEN", "")

    response = signed_post(client, STATUS, PARAMS, **kwargs)  # type: ignore[arg-type]

    assert response.status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryEvent)) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/twilio/sms-status",
        "/webhooks/twilio/voice-status",
        "/webhooks/twilio/sms-inbound",
        "/twiml/offer/abc",
        "/twiml/offer/abc/gather",
    ],
)
def test_every_twilio_endpoint_checks_the_signature(
    providers: Providers, client: FlaskClient, path: str
) -> None:
    assert signed_post(client, path, PARAMS, token="wrong").status_code == 403


def test_the_signature_is_checked_against_the_public_url_behind_a_proxy(
    providers: Providers, client: FlaskClient
) -> None:
    # The request reaches the app as http://localhost/…; Twilio signed the public URL.
    response = signed_post(client, STATUS, PARAMS)
    assert response.status_code == 204
    signed_for_local = signed_post(client, STATUS, PARAMS, signed_url="http://localhost" + STATUS)
    assert signed_for_local.status_code == 403


def test_a_replayed_receipt_is_stored_once(providers: Providers, client: FlaskClient) -> None:
    assert signed_post(client, STATUS, PARAMS).status_code == 204
    assert signed_post(client, STATUS, PARAMS).status_code == 204
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryEvent)) == 1


# --- inbound texts ---------------------------------------------------------------


@pytest.mark.parametrize("word", ["YES", "y", "1", " Yes! "])
def test_yes_books_the_latest_pending_offer(
    scene: Scene, providers: Providers, client: FlaskClient, word: str
) -> None:
    response = text(client, scene.patient_a.phone_e164, word)

    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert "You're booked for Botox" in reply_of(response)
    appointment = db.session.scalars(sa.select(Appointment)).one()
    assert appointment.patient_id == scene.patient_a.id and appointment.slot_id == scene.slot.id
    db.session.refresh(scene.offer_b)
    assert scene.offer_b.status == OfferStatus.WITHDRAWN  # same atomic path as the web page


def test_yes_after_someone_else_won_replies_with_the_alternatives_link(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    text(client, scene.patient_b.phone_e164, "YES", sid="SMb")

    reply = reply_of(text(client, scene.patient_a.phone_e164, "YES", sid="SMa"))

    assert "was just taken" in reply and "http://portal.test/o/" in reply
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1


def test_no_declines_and_keeps_the_patient_waiting(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    reply = reply_of(text(client, scene.patient_a.phone_e164, "no"))

    assert "still on the waitlist" in reply
    assert db.session.get(Offer, scene.offer_a.id).status == OfferStatus.DECLINED


def test_a_redelivered_text_is_answered_once(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    first = text(client, scene.patient_a.phone_e164, "YES", sid="SMdup")
    again = text(client, scene.patient_a.phone_e164, "YES", sid="SMdup")

    assert "booked" in reply_of(first) and reply_of(again) == ""


def test_stop_start_and_help(scene: Scene, providers: Providers, client: FlaskClient) -> None:
    phone = scene.patient_a.phone_e164

    assert "won't get any more texts" in reply_of(text(client, phone, "STOP", sid="S1"))
    db.session.refresh(scene.patient_a)
    assert scene.patient_a.sms_opt_out is True
    assert "Reply YES to book" in reply_of(text(client, phone, "help", sid="S2"))
    assert "texts from us again" in reply_of(text(client, phone, "START", sid="S3"))
    db.session.refresh(scene.patient_a)
    assert scene.patient_a.sms_opt_out is False


def test_twilio_handled_opt_out_is_recorded_without_a_reply(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    response = text(client, scene.patient_a.phone_e164, "Stop please", OptOutType="STOP")

    assert reply_of(response) == ""
    db.session.refresh(scene.patient_a)
    assert scene.patient_a.sms_opt_out is True
    notification = queue_notification(scene.patient_a, Purpose.SLOT_FILLED, "after-stop")
    assert notification.attempts[0].failure_reason == "patient opted out (STOP)"


def test_texts_from_unknown_numbers_get_no_answer(
    providers: Providers, client: FlaskClient, app: object
) -> None:
    assert reply_of(text(client, "+12125550142", "YES")) == ""


# --- calls -----------------------------------------------------------------------


def _call(scene: Scene, providers: Providers) -> str:
    """Offer patient A by phone: texts fail (Twilio 21408) and they have no email."""
    scene.patient_a.email = None
    providers.twilio.script(scene.patient_a.phone_e164, Behaviour("fail", 400, 21408))
    queue_notification(scene.patient_a, Purpose.OFFER, "offer:call", offer_id=scene.offer_a.id)
    drain()
    [call] = providers.twilio.sends_to(scene.patient_a.phone_e164, kind="call")
    return call.params["Url"].removeprefix(BASE)


def test_the_call_reads_the_offer_and_asks_for_a_key(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    path = _call(scene, providers)

    twiml = signed_post(client, path, {"CallSid": "CA1"}).get_data(as_text=True)

    assert "<Gather" in twiml and f'action="{BASE}{path}/gather"' in twiml
    assert "Botox" in twiml and "press 1" in twiml and "press 2" in twiml


def test_pressing_1_books_through_the_atomic_accept(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    path = _call(scene, providers)

    twiml = signed_post(client, path + "/gather", {"Digits": "1"}).get_data(as_text=True)

    assert "You're booked for Botox" in twiml and "<Hangup" in twiml
    assert db.session.scalars(sa.select(Appointment)).one().patient_id == scene.patient_a.id
    deliver_all(client, providers.twilio)


def test_pressing_1_after_losing_the_race_says_so(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    path = _call(scene, providers)
    text(client, scene.patient_b.phone_e164, "YES", sid="SMwin")

    twiml = signed_post(client, path + "/gather", {"Digits": "1"}).get_data(as_text=True)

    assert "just taken by someone else" in twiml


def test_pressing_2_declines_and_another_key_asks_again(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    path = _call(scene, providers)

    again = signed_post(client, path + "/gather", {"Digits": "7"}).get_data(as_text=True)
    assert "didn't get that" in again and "<Redirect" in again
    declined = signed_post(client, path + "/gather", {"Digits": "2"}).get_data(as_text=True)
    assert "still on the waitlist" in declined
    assert db.session.get(Offer, scene.offer_a.id).status == OfferStatus.DECLINED


def test_a_forged_call_token_says_nothing_useful(providers: Providers, client: FlaskClient) -> None:
    twiml = signed_post(client, "/twiml/offer/forged", {"CallSid": "CA1"}).get_data(as_text=True)
    assert "no longer available" in twiml and "<Gather" not in twiml
