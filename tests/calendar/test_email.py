"""The booking confirmation carries the .ics: over real SMTP, and named in the outbox."""

from __future__ import annotations

import sqlalchemy as sa
from icalendar import Calendar

from portal.db import db
from portal.models import Appointment, OutboxMessage, Slot
from portal.models.enums import AppointmentSource, Channel
from portal.services import booking
from portal.services.audit import Actor
from tests import factories as f
from tests.calendar.conftest import LA, PATIENT_NAME
from tests.notify.conftest import Providers, drain


def _book_by_email_only() -> Appointment:
    """Book an open LA slot for a patient who can only be reached by email."""
    clinic = f.location(name="Sunset Boulevard", timezone=LA, address="8500 Sunset Blvd")
    doctor = f.practitioner(location=clinic, name="Dr. Maya Lee")
    slot: Slot = f.slot(practitioner=doctor, service=f.service(name="Lip filler"))
    patient = f.patient(name=PATIENT_NAME, phone_e164=None, email="zelda@example.test")
    appointment = booking.book_slot(
        slot.id, patient, source=AppointmentSource.ALTERNATIVE, actor=Actor.patient(patient.id)
    )
    db.session.commit()
    drain()
    return appointment


def test_the_confirmation_email_carries_the_event(providers: Providers) -> None:
    appointment = _book_by_email_only()

    (email,) = providers.smtp.handler.to("zelda@example.test")
    (part,) = [p for p in email.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "PUBLISH"
    assert part.get_filename() == "appointment.ics"
    assert part.get_content_disposition() == "attachment"
    assert email.get_body(("plain",)) is not None and email.get_body(("html",)) is not None

    (event,) = Calendar.from_ical(part.get_payload(decode=True)).events
    assert str(event["UID"]) == f"appointment-{appointment.id}@portal.test"
    assert event["DTSTART"].params["TZID"] == LA
    assert event.start == appointment.slot.start_at
    assert event.end == appointment.slot.end_at
    assert event["STATUS"] == "CONFIRMED"


def test_the_outbox_names_the_attachment_it_does_not_keep(app: object) -> None:
    _book_by_email_only()

    row = db.session.scalar(
        sa.select(OutboxMessage).where(
            OutboxMessage.channel == Channel.EMAIL, OutboxMessage.to == "zelda@example.test"
        )
    )
    assert row is not None
    assert row.body.endswith(
        "[Attached, not stored in the outbox: appointment.ics (text/calendar)]"
    )
