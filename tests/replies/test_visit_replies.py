"""Replies about a visit: C/YES confirm after a reminder, R gets the link, opt-out rules.

YES is shared with offers: it answers whatever the patient was asked last.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Notification
from portal.models.enums import AppointmentStatus, OfferStatus, Purpose
from portal.services.notify import queue_notification
from tests import factories as f
from tests.notify.conftest import Providers
from tests.notify.test_webhooks import reply_of, text
from tests.patient.conftest import Scene

CLINIC = "(212) 555-0100"


def remind(scene: Scene, *, minutes_ago: int = 0) -> Appointment:
    """Ana has a booked (unconfirmed) visit in 3 days and was just reminded of it."""
    slot = f.slot(
        start_at=scene.slot.start_at + timedelta(days=2),
        practitioner=scene.slot.practitioner,
        service=scene.slot.service,
    )
    appointment = f.appointment(slot=slot, patient=scene.patient_a)
    queue_notification(
        scene.patient_a,
        Purpose.REMINDER,
        f"reminder:test:{appointment.id}",
        appointment_id=appointment.id,
        context={"lead_hours": 72, "slot_start_at": slot.start_at.isoformat()},
        now=now_utc() - timedelta(minutes=minutes_ago),
    )
    db.session.commit()
    return appointment


def test_c_confirms_the_reminded_visit_audited_as_the_patient(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    appointment = remind(scene)

    reply = reply_of(text(client, scene.patient_a.phone_e164, "C"))

    db.session.expire_all()
    assert appointment.status == AppointmentStatus.CONFIRMED and appointment.confirmed_at
    assert "you're confirmed for Botox" in reply
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "appointment.confirmed")
    ).one()
    assert (event.actor_type, event.actor_id) == ("patient", str(scene.patient_a.id))
    again = reply_of(text(client, scene.patient_a.phone_e164, "c", sid="SMin2"))
    assert "already confirmed" in again


def test_yes_after_a_reminder_confirms_and_leaves_the_older_offer_open(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    scene.offer_a.created_at = now_utc() - timedelta(hours=1)
    appointment = remind(scene)

    reply = reply_of(text(client, scene.patient_a.phone_e164, "YES"))

    db.session.expire_all()
    assert "confirmed" in reply
    assert appointment.status == AppointmentStatus.CONFIRMED
    assert scene.offer_a.status == OfferStatus.PENDING
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1


def test_yes_after_an_offer_newer_than_the_reminder_books_the_offer(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    appointment = remind(scene, minutes_ago=60)

    reply = reply_of(text(client, scene.patient_a.phone_e164, "YES"))

    db.session.expire_all()
    assert "You're booked for Botox" in reply
    assert scene.offer_a.status == OfferStatus.ACCEPTED
    assert appointment.status == AppointmentStatus.BOOKED  # not confirmed by that YES


def test_yes_about_a_cancelled_visit_falls_back_to_the_offer(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    appointment = remind(scene)
    appointment.status = AppointmentStatus.CANCELLED
    appointment.slot.status = "open"
    db.session.commit()

    reply = reply_of(text(client, scene.patient_a.phone_e164, "yes"))

    assert "You're booked for Botox" in reply


def test_r_sends_the_reschedule_link(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    remind(scene)
    reply = reply_of(text(client, scene.patient_a.phone_e164, "R"))
    assert "Pick a new time for your Botox" in reply
    assert "http://portal.test/a/" in reply and reply.rstrip().endswith("/reschedule")


def test_asking_to_cancel_a_visit_is_not_an_opt_out(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    remind(scene)
    reply = reply_of(text(client, scene.patient_a.phone_e164, "I need to cancel my appointment"))

    db.session.expire_all()
    assert scene.patient_a.sms_opt_out is False
    assert "use your appointment page: http://portal.test/a/" in reply and CLINIC in reply
    assert "reply cancel" not in reply.lower()


def test_stop_in_plain_words_opts_out_with_one_confirmation(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    phone = scene.patient_a.phone_e164
    remind(scene)

    first = reply_of(text(client, phone, "please stop texting me", sid="S1"))
    second = reply_of(text(client, phone, "STOP", sid="S2"))
    after = reply_of(text(client, phone, "C", sid="S3"))

    db.session.expire_all()
    assert scene.patient_a.sms_opt_out is True
    assert "won't get any more texts" in first
    assert second == "" and after == ""


def test_help_is_always_answered_with_the_clinics_name_and_number(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    scene.patient_a.sms_opt_out = True
    db.session.commit()

    opted_out = reply_of(text(client, scene.patient_a.phone_e164, "HELP", sid="S1"))
    stranger = reply_of(text(client, "+12125550142", "help", sid="S2"))

    for reply in (opted_out, stranger):
        assert reply.startswith(f"Glow Medical Spa, {CLINIC}:")
        assert "STOP to opt out" in reply


def test_start_and_unstop_resubscribe(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    phone = scene.patient_a.phone_e164
    for sid, word in (("S1", "STOP"), ("S2", "UNSTOP"), ("S3", "end"), ("S4", "Start")):
        text(client, phone, word, sid=sid)
        db.session.expire_all()
        assert scene.patient_a.sms_opt_out is (word.upper() in ("STOP", "END"))


def test_no_reminder_means_no_confirmation(
    scene: Scene, providers: Providers, client: FlaskClient
) -> None:
    reply = reply_of(text(client, scene.patient_b.phone_e164, "C"))
    assert "couldn't find an upcoming appointment" in reply
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0
