"""The chain end to end with the real Twilio client (fake API) and a real SMTP server."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Notification, OutreachTask, PatientFlag, WaitlistEntry
from portal.models.enums import (
    AttemptStatus,
    FlagKind,
    NotificationStatus,
    OutreachPriority,
    Purpose,
    WaitlistStatus,
)
from portal.services.notify import queue_notification, sending
from tests import factories as f
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


def test_sms_delivered(scene: Scene, providers: Providers, client: FlaskClient) -> None:
    notification = offer_notification(scene)

    assert drain() == [sending.Outcome.SENT]
    [sms] = providers.twilio.sends_to(scene.patient_a.phone_e164)
    assert "Botox" in sms.params["Body"] and "http://portal.test/o/" in sms.params["Body"]
    assert sms.params["StatusCallback"].startswith("http://portal.test/webhooks/twilio/sms-status?")
    assert deliver_all(client, providers.twilio) == [204, 204]

    assert chain(notification) == [("sms", "delivered")]
    assert notification.status == NotificationStatus.DELIVERED
    attempt = notification.attempts[0]
    assert attempt.provider_id == sms.sid and attempt.delivered_at is not None
    assert attempt.fallback_link and attempt.fallback_link in sms.params["Body"]


def test_sms_undelivered_goes_to_email(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    phone, email = scene.patient_a.phone_e164, scene.patient_a.email
    providers.twilio.script(phone, Behaviour(callbacks=("sent", "undelivered"), error_code="30003"))
    notification = offer_notification(scene)

    drain()
    deliver_all(client, providers.twilio)
    assert drain() == [sending.Outcome.DELIVERED]  # SMTP accepted it: as good as it gets

    assert chain(notification) == [("sms", "undelivered"), ("email", "delivered")]
    assert notification.attempts[0].failure_reason == "provider reported undelivered (error 30003)"
    [mail] = providers.smtp.handler.to(email)
    assert mail["Subject"] and "Botox" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "http://portal.test/o/" in text and "<table" in html
    assert notification.status == NotificationStatus.DELIVERED


def test_smtp_failure_goes_to_voice(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    phone, email = scene.patient_a.phone_e164, scene.patient_a.email
    providers.twilio.script(phone, Behaviour(callbacks=("failed",), error_code="30008"))
    providers.smtp.handler.reject_rcpt[email] = "550 5.1.1 Mailbox does not exist"
    notification = offer_notification(scene)

    drain()
    deliver_all(client, providers.twilio)
    drain()  # email refused permanently -> voice queued -> call placed
    [call] = providers.twilio.sends_to(phone, kind="call")
    assert call.params["Url"].startswith("http://portal.test/twiml/offer/")
    assert deliver_all(client, providers.twilio) == [204]  # completed

    assert chain(notification) == [("sms", "failed"), ("email", "failed"), ("voice", "delivered")]
    assert notification.attempts[1].failure_reason == "SMTP 550 at RCPT"


def test_voice_no_answer_raises_a_manual_task(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    phone = scene.patient_a.phone_e164
    scene.patient_a.email = None
    providers.twilio.script(
        phone,
        Behaviour(callbacks=("undelivered",)),
        Behaviour(callbacks=("no-answer",)),
    )
    notification = offer_notification(scene)

    drain()
    deliver_all(client, providers.twilio)
    drain()
    deliver_all(client, providers.twilio)

    assert chain(notification) == [
        ("sms", "undelivered"),
        ("email", "skipped"),
        ("voice", "no_answer"),
        ("manual", "sent"),
    ]
    assert notification.status == NotificationStatus.EXHAUSTED
    task = db.session.scalars(sa.select(OutreachTask)).one()
    assert task.priority == OutreachPriority.HIGH and task.offer_id == scene.offer_a.id
    assert timedelta(minutes=59) < task.deadline_at - now_utc() <= timedelta(hours=1)
    entry = db.session.get(WaitlistEntry, scene.offer_a.waitlist_entry_id)
    assert entry.status == WaitlistStatus.UNREACHABLE
    flag = db.session.scalars(sa.select(PatientFlag)).one()
    assert flag.kind == FlagKind.UNREACHABLE and flag.patient_id == scene.patient_a.id


def test_staff_home_alerts_to_the_manual_task(scene: Scene, signed_in: FlaskClient) -> None:
    scene.patient_a.phone_e164 = None
    scene.patient_a.email = None
    offer_notification(scene)

    page = signed_in.get("/staff/").get_data(as_text=True)

    assert "Open outreach tasks" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutreachTask)) == 1


def test_invalid_phone_goes_to_email_first_and_flags(
    scene: Scene, providers: Providers, portal_logs: pytest.LogCaptureFixture
) -> None:
    scene.patient_a.phone_e164 = None
    scene.patient_a.phone_raw = "555-12"
    notification = offer_notification(scene)
    drain()

    assert chain(notification) == [("sms", "skipped"), ("email", "delivered")]
    assert notification.attempts[0].failure_reason == "no valid phone number"
    assert providers.twilio.requests_seen == 0
    flag = db.session.scalars(sa.select(PatientFlag)).one()
    assert flag.kind == FlagKind.INVALID_PHONE
    assert "sms skipped (no valid phone number)" in portal_logs.text
    assert "555-12" not in portal_logs.text and scene.patient_a.email not in portal_logs.text


def test_opted_out_patient_gets_no_text_or_call(scene: Scene, providers: Providers) -> None:
    scene.patient_a.sms_opt_out = True
    scene.patient_a.email = None
    notification = offer_notification(scene)

    assert chain(notification) == [
        ("sms", "skipped"),
        ("email", "skipped"),
        ("voice", "skipped"),
        ("manual", "sent"),
    ]
    assert providers.twilio.requests_seen == 0


def test_twilio_21610_opts_the_patient_out_and_escalates(
    scene: Scene, providers: Providers
) -> None:
    providers.twilio.script(scene.patient_a.phone_e164, Behaviour("fail", 400, 21610))
    notification = offer_notification(scene)
    drain()

    assert chain(notification) == [("sms", "failed"), ("email", "delivered")]
    assert "21610" in notification.attempts[0].failure_reason
    db.session.refresh(scene.patient_a)
    assert scene.patient_a.sms_opt_out is True


def test_twilio_21211_marks_the_number_invalid(scene: Scene, providers: Providers) -> None:
    providers.twilio.script(scene.patient_a.phone_e164, Behaviour("fail", 400, 21211))
    scene.patient_a.email = None
    notification = offer_notification(scene)
    drain()

    assert chain(notification) == [
        ("sms", "failed"),
        ("email", "skipped"),
        ("voice", "skipped"),
        ("manual", "sent"),
    ]
    kinds = set(db.session.scalars(sa.select(PatientFlag.kind)))
    assert kinds == {FlagKind.INVALID_PHONE, FlagKind.UNREACHABLE}


def test_silent_failure_escalates_after_the_receipt_timeout(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    providers.twilio.script(scene.patient_a.phone_e164, Behaviour(callbacks=()))
    notification = offer_notification(scene)
    drain()
    assert sending.overdue_receipt_ids(now_utc()) == []

    later = now_utc() + timedelta(minutes=11)
    [overdue] = sending.overdue_receipt_ids(later)
    assert sending.expire_receipt(overdue, later) is True
    assert sending.expire_receipt(overdue, later) is False  # a second sweep does nothing
    drain(later)

    assert chain(notification) == [("sms", "timed_out"), ("email", "delivered")]
    assert notification.attempts[0].failure_reason == "no receipt within 10 min"


def test_a_late_receipt_after_a_timeout_still_counts(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    providers.twilio.script(scene.patient_a.phone_e164, Behaviour(callbacks=("delivered",)))
    notification = offer_notification(scene)
    drain()
    later = now_utc() + timedelta(minutes=11)
    sending.expire_receipt(notification.attempts[0].id, later)
    db.session.commit()
    assert chain(notification) == [("sms", "timed_out"), ("email", "queued")]

    deliver_all(client, providers.twilio)  # the receipt turns up after all

    assert chain(notification) == [("sms", "delivered"), ("email", "canceled")]
    assert notification.status == NotificationStatus.DELIVERED
    assert providers.smtp.handler.messages == []


def test_quiet_hours_send_offers_by_email_and_hold_other_texts(
    scene: Scene, providers: Providers
) -> None:
    from portal.services.settings import set_setting
    from tests.patient.conftest import tomorrow_at

    set_setting("quiet_hours", {"start": "21:00", "end": "08:00"})
    night = tomorrow_at(23, "America/Los_Angeles") - timedelta(days=1)  # 23:00 for patient A
    scene.offer_a.window_expires_at = night + timedelta(hours=1)
    appointment = f.appointment(slot=scene.same_practitioner_alt, patient=scene.patient_a)
    offer = queue_notification(
        scene.patient_a, Purpose.OFFER, "offer:night", offer_id=scene.offer_a.id, now=night
    )
    confirmation = queue_notification(
        scene.patient_a,
        Purpose.CONFIRMATION,
        "confirmation:night",
        appointment_id=appointment.id,
        now=night,
    )
    db.session.commit()

    assert chain(offer) == [("sms", "skipped"), ("email", "queued")]
    assert offer.attempts[0].failure_reason == "quiet hours in the patient's zone"
    [(channel, status)] = chain(confirmation)
    assert (channel, status) == ("sms", "queued")
    waits_until = confirmation.attempts[0].not_before.astimezone(night.tzinfo)
    assert (waits_until.hour, waits_until.minute) == (8, 0) and waits_until > night
    assert sending.send_attempt(confirmation.attempts[0].id, night) is None  # not due yet
    assert providers.twilio.requests_seen == 0


def test_a_text_due_during_quiet_hours_waits_at_send_time(scene: Scene) -> None:
    from portal.services.settings import set_setting
    from tests.patient.conftest import tomorrow_at

    evening = tomorrow_at(20, "America/Los_Angeles") - timedelta(days=1)
    appointment = f.appointment(slot=scene.same_practitioner_alt, patient=scene.patient_a)
    notification = queue_notification(
        scene.patient_a,
        Purpose.CONFIRMATION,
        "confirmation:late",
        appointment_id=appointment.id,
        now=evening,
    )
    set_setting("quiet_hours", {"start": "21:00", "end": "08:00"})
    db.session.commit()
    late = evening + timedelta(hours=2)  # the job ran late: it is 22:00 now

    assert sending.send_attempt(notification.attempts[0].id, late) == sending.Outcome.DEFERRED
    assert chain(notification) == [("sms", "queued")]
    assert notification.attempts[0].not_before.astimezone(late.tzinfo).hour == 8


def test_daily_cap_per_purpose(scene: Scene) -> None:
    from portal.services.settings import set_setting

    set_setting("daily_purpose_cap", {"slot_filled": 2})
    made = [
        queue_notification(scene.patient_a, Purpose.SLOT_FILLED, f"filled:{i}") for i in range(3)
    ]
    db.session.commit()

    assert [n.status for n in made] == [
        NotificationStatus.PENDING,
        NotificationStatus.PENDING,
        NotificationStatus.CANCELLED,
    ]
    assert made[2].attempts[0].failure_reason == "daily limit of 2 slot_filled messages reached"
    assert queue_notification(scene.patient_b, Purpose.SLOT_FILLED, "filled:b") is not None


def test_offer_messages_are_never_capped_here(scene: Scene) -> None:
    """Offers are capped by matching; a capped offer *message* would be a silent offer."""
    from portal.services.settings import set_setting

    set_setting("daily_purpose_cap", {"default": 0, "offer": 0})
    notification = queue_notification(scene.patient_a, Purpose.OFFER, "offer:capped?")
    db.session.commit()
    assert notification.status == NotificationStatus.PENDING
    assert notification.attempts[0].status != AttemptStatus.SKIPPED


def test_a_withdrawn_offer_stops_its_chain(scene: Scene, providers: Providers) -> None:
    from portal.models.enums import OfferStatus

    notification = offer_notification(scene)
    scene.offer_a.status = OfferStatus.WITHDRAWN
    db.session.commit()

    assert drain() == [sending.Outcome.CANCELED]
    assert notification.status == NotificationStatus.CANCELLED
    assert providers.twilio.requests_seen == 0


def test_a_sent_receipt_alone_leaves_the_attempt_waiting(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    notification = offer_notification(scene)
    drain()
    [sent, _delivered] = providers.twilio.take_pending()
    assert post_callback(client, sent) == 204
    db.session.refresh(notification)
    assert chain(notification) == [("sms", "sent")]
    assert notification.attempts[0].receipt_deadline_at is not None
