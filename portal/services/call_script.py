"""What a member of staff reads out when phoning a patient about an outreach task.

The offer or appointment in the patient's own time zone, and the clinic's when it
differs; how long an offer stays open; the text of the message that never arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.db import db, now_utc
from portal.models import Appointment, Offer, OutreachTask, Patient
from portal.models.enums import Channel
from portal.services.notify.messages import patient_link, render_message
from portal.services.phones import display_phone
from portal.services.presentation import SlotView, slot_view, when
from portal.services.responses import OfferState, offer_state


@dataclass(frozen=True)
class CallScript:
    patient: Patient
    phone: str
    slot: SlotView | None = None
    offer: Offer | None = None
    state: OfferState | None = None
    #: When the offer's window closes, in the patient's zone and the clinic's.
    expires: str | None = None
    expires_clinic: str | None = None
    appointment: Appointment | None = None
    message: str | None = None
    link: str | None = None

    @property
    def answerable(self) -> bool:
        return self.state in (OfferState.OPEN, OfferState.BUSY)


def call_script(task: OutreachTask, now: datetime | None = None) -> CallScript:
    """Everything the call needs, read now (an offer may have moved on)."""
    now = now or now_utc()
    patient = task.patient
    phone = display_phone(patient.phone_e164) or patient.phone_raw or ""
    message = link = None
    if task.notification is not None:
        message = render_message(task.notification, Channel.SMS).body
        link = patient_link(task.notification)
    if task.offer_id is not None:
        offer = db.session.get_one(Offer, task.offer_id)
        clinic_zone = offer.slot.location.timezone
        expires_clinic = when(offer.window_expires_at, clinic_zone, "time")
        expires = when(offer.window_expires_at, patient.timezone, "time")
        return CallScript(
            patient,
            phone,
            slot=slot_view(offer.slot, patient.timezone),
            offer=offer,
            state=offer_state(offer, now),
            expires=expires,
            expires_clinic=expires_clinic if expires_clinic != expires else None,
            message=message,
            link=link,
        )
    if task.appointment_id is not None:
        appointment = db.session.get_one(Appointment, task.appointment_id)
        return CallScript(
            patient,
            phone,
            slot=slot_view(appointment.slot, patient.timezone),
            appointment=appointment,
            message=message,
            link=link,
        )
    return CallScript(patient, phone, message=message, link=link)
