"""Message templates: every channel renders for offers, slot-filled and confirmations."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal.db import db
from portal.models import Notification
from portal.models.enums import AppointmentSource, Channel, Purpose
from portal.services.notify import queue_notification
from portal.services.notify.messages import render_message
from tests import factories as f
from tests.patient.conftest import Scene

#: The GSM 03.38 basic set (plus the escape-table chars we might use): anything else
#: switches an SMS to UCS-2 and halves its length.
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def _notification(scene: Scene, purpose: Purpose) -> Notification:
    if purpose == Purpose.CONFIRMATION:
        appointment = f.appointment(
            slot=scene.slot, patient=scene.patient_a, source=AppointmentSource.WAITLIST
        )
        return queue_notification(
            scene.patient_a, purpose, f"test:{appointment.id}", appointment_id=appointment.id
        )
    return queue_notification(
        scene.patient_a, purpose, f"{purpose.value}:{scene.offer_a.id}", offer_id=scene.offer_a.id
    )


@pytest.mark.parametrize("purpose", [Purpose.OFFER, Purpose.SLOT_FILLED, Purpose.CONFIRMATION])
@pytest.mark.parametrize("channel", [Channel.SMS, Channel.EMAIL, Channel.VOICE])
def test_every_channel_renders(scene: Scene, purpose: Purpose, channel: Channel) -> None:
    message = render_message(_notification(scene, purpose), channel)

    assert "Glow Medical Spa" in message.body
    assert "Botox" in message.body and "7:00" in message.body
    assert "10:00" in message.body  # the clinic's time, since it differs
    assert "{{" not in message.body and "[ACCEPT]" not in message.body.upper()
    if channel == Channel.EMAIL:
        assert message.subject and "\n" not in message.subject
        assert message.html and "<table" in message.html and "Botox" in message.html
        assert message.links and message.links[0] in message.html
    if channel == Channel.SMS:
        assert len(message.body) <= 306
        assert set(message.body) <= GSM7, set(message.body) - GSM7
        assert len(message.links) == 1
    if channel == Channel.VOICE:
        assert "http" not in message.body


def test_offer_sms_fits_two_segments_with_its_link(scene: Scene) -> None:
    scene.patient_a.name = "Alexandrina Montgomery-Featherstonehaugh"
    scene.slot.service.name = "HydraFacial Deluxe Signature"
    scene.slot.practitioner.name = "Dr. Evangeline Worthington"
    db.session.flush()

    message = render_message(_notification(scene, Purpose.OFFER), Channel.SMS)

    assert len(message.body) <= 306, len(message.body)
    assert message.links and message.links[0].startswith("http://portal.test/o/")
    assert message.links[0] in message.body
    assert "Reply YES to book, NO to pass" in message.body
    assert "clinic time" in message.body


def test_offer_voice_says_which_keys(scene: Scene) -> None:
    message = render_message(_notification(scene, Purpose.OFFER), Channel.VOICE)

    assert "press 1" in message.body and "press 2" in message.body


def test_same_zone_leaves_out_the_clinic_time(scene: Scene) -> None:
    scene.patient_a.timezone = "America/New_York"
    db.session.flush()
    notification = _notification(scene, Purpose.OFFER)

    for channel in (Channel.SMS, Channel.EMAIL, Channel.VOICE):
        message = render_message(notification, channel)
        assert "clinic" not in message.body.lower().replace("call the clinic", "")
        assert "10:00" in message.body


def test_clinic_time_names_its_date_when_the_day_differs(scene: Scene) -> None:
    scene.patient_a.timezone = "Europe/Berlin"  # 10:00 ET is 16:00 in Berlin, same day
    scene.slot.start_at = scene.slot.start_at + timedelta(hours=9)  # 19:00 ET = 01:00 CET
    scene.slot.end_at = scene.slot.start_at + timedelta(minutes=30)
    db.session.flush()

    body = render_message(_notification(scene, Purpose.OFFER), Channel.SMS).body

    assert "1:00AM CET" in body
    assert re.search(r"\(\w{3}, \w{3} \d+ 7:00 PM EST clinic time\)", body), body


def test_confirmation_email_shows_the_clinic_number_as_people_write_it(scene: Scene) -> None:
    message = render_message(_notification(scene, Purpose.CONFIRMATION), Channel.EMAIL)
    assert "(212) 555-0100" in message.body and "(212) 555-0100" in message.html
    assert "+12125550100" not in message.body
