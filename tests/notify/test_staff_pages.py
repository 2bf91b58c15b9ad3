"""Staff pages for messages: the outbox (development) and the patient timeline."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from portal.db import db
from portal.models import DeliveryEvent, Notification, OutboxMessage
from portal.models.enums import NotificationStatus, Purpose
from portal.services.notify import queue_notification
from tests.conftest import csrf_token_from
from tests.notify.conftest import Providers, drain
from tests.patient.conftest import Scene


def outbox_offer(scene: Scene) -> Notification:
    notification = queue_notification(
        scene.patient_a, Purpose.OFFER, "offer:outbox", offer_id=scene.offer_a.id
    )
    db.session.commit()
    drain()
    return notification


def mark(client: FlaskClient, message_id: int, status: str):
    token = csrf_token_from(client.get("/staff/outbox").get_data(as_text=True))
    return client.post(
        f"/staff/outbox/{message_id}/mark", data={"csrf_token": token, "status": status}
    )


def test_the_outbox_lists_messages_with_their_links(scene: Scene, signed_in: FlaskClient) -> None:
    outbox_offer(scene)

    page = signed_in.get("/staff/outbox").get_data(as_text=True)

    assert scene.patient_a.phone_e164 in page and "Botox" in page
    assert "http://portal.test/o/" in page and 'value="undelivered"' in page


def test_marking_drives_the_chain_like_a_provider_receipt(
    scene: Scene, signed_in: FlaskClient
) -> None:
    notification = outbox_offer(scene)
    sms = db.session.scalars(sa.select(OutboxMessage)).one()

    assert mark(signed_in, sms.id, "undelivered").status_code == 303
    drain()
    email = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.id != sms.id)).one()
    mark(signed_in, email.id, "bounced")
    drain()
    call = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    mark(signed_in, call.id, "no-answer")

    db.session.refresh(notification)
    assert [(a.channel.value, a.status.value) for a in notification.attempts] == [
        ("sms", "undelivered"),
        ("email", "bounced"),
        ("voice", "no_answer"),
        ("manual", "sent"),
    ]
    assert notification.status == NotificationStatus.EXHAUSTED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryEvent)) == 3


def test_a_second_mark_changes_nothing(scene: Scene, signed_in: FlaskClient) -> None:
    notification = outbox_offer(scene)
    sms = db.session.scalars(sa.select(OutboxMessage)).one()
    mark(signed_in, sms.id, "delivered")

    response = mark(signed_in, sms.id, "failed")
    page = signed_in.get("/staff/outbox").get_data(as_text=True)

    assert response.status_code == 303 and "already settled" in page
    db.session.refresh(notification)
    assert notification.status == NotificationStatus.DELIVERED


def test_an_unknown_mark_is_refused(scene: Scene, signed_in: FlaskClient) -> None:
    outbox_offer(scene)
    sms = db.session.scalars(sa.select(OutboxMessage)).one()

    mark(signed_in, sms.id, "no-answer")  # calls only
    assert "Cannot mark a sms message no-answer" in signed_in.get("/staff/outbox").text
    assert mark(signed_in, 999, "delivered").status_code == 404


def test_the_outbox_is_gone_when_every_provider_is_configured(
    providers: Providers, signed_in: FlaskClient
) -> None:
    assert signed_in.get("/staff/outbox").status_code == 404
    assert signed_in.post("/staff/outbox/1/mark").status_code in (400, 404)


def test_staff_pages_need_a_sign_in(client: FlaskClient, app: Flask) -> None:
    for path in ("/staff/outbox", "/staff/patients", "/staff/patients/1"):
        assert client.get(path).status_code == 302


def test_patients_search(scene: Scene, signed_in: FlaskClient) -> None:
    page = signed_in.get("/staff/patients?q=alvarez").get_data(as_text=True)
    assert "Ana Alvarez" in page and "Ben Brooks" not in page
    by_phone = signed_in.get(f"/staff/patients?q={scene.patient_b.phone_e164[-4:]}").text
    assert "Ben Brooks" in by_phone
    assert "No patient matches" in signed_in.get("/staff/patients?q=zzz").text


def test_the_patient_timeline_shows_every_attempt(scene: Scene, signed_in: FlaskClient) -> None:
    notification = outbox_offer(scene)
    sms = db.session.scalars(sa.select(OutboxMessage)).one()
    mark(signed_in, sms.id, "undelivered")
    drain()

    page = signed_in.get(f"/staff/patients/{scene.patient_a.id}").get_data(as_text=True)

    assert f"notification-{notification.id}" in page
    assert "provider reported undelivered" in page and "Undelivered" in page
    assert "Email" in page and "Link sent: http://portal.test/o/" in page
    assert f"offer-{scene.offer_a.id}" in page
    assert signed_in.get("/staff/patients/999").status_code == 404


@pytest.mark.usefixtures("app")
def test_portal_outbox_json(scene: Scene, runner: FlaskCliRunner) -> None:
    outbox_offer(scene)

    rows = json.loads(runner.invoke(args=["outbox", "--json"]).output)
    text = runner.invoke(args=["outbox", "--to", scene.patient_a.phone_e164]).output

    [row] = rows
    assert row["channel"] == "sms" and row["purpose"] == "offer"
    assert row["patient_id"] == scene.patient_a.id and row["offer_id"] == scene.offer_a.id
    assert row["appointment_id"] is None and row["status"] == "sent"
    assert row["links"] and row["links"][0].startswith("http://portal.test/o/")
    assert "offer" in text and "sms" in text
