"""Rendering a notification for a channel from the templates in sms/, emails/, voice/."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app, render_template

from portal.db import db
from portal.models import Appointment, Notification, Offer, Patient, Slot
from portal.models.enums import AppointmentStatus, Channel, Purpose
from portal.services.calendar import ICS_FILENAME, appointment_ics
from portal.services.links import appointment_url, offer_url, rebook_url
from portal.services.phones import display_phone
from portal.services.presentation import slot_view, when
from portal.services.waitlist import still_waitlisted

_URL = re.compile(r"https?://\S+")

#: Purposes whose emails carry the appointment as an ``.ics`` attachment, and its METHOD.
CALENDAR_PURPOSES = {Purpose.CONFIRMATION: "PUBLISH", Purpose.CANCELLATION: "CANCEL"}


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email (only the SMTP backend carries it)."""

    filename: str
    content: bytes
    maintype: str
    subtype: str
    #: Extra Content-Type parameters, e.g. ``{"method": "PUBLISH"}`` for calendars.
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Message:
    """What goes out on one channel."""

    body: str
    subject: str | None = None
    html: str | None = None
    links: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


def slot_context(slot: Slot, patient_tz: str) -> dict[str, Any]:
    """What templates say about a slot, in the patient's zone (and the clinic's)."""
    shown = slot_view(slot, patient_tz)
    return {
        "slot": slot,
        "service": slot.service,
        "practitioner": slot.practitioner,
        "location": slot.location,
        "location_phone": display_phone(slot.location.phone),
        "when": shown.when,
        "when_short": shown.when_short,
        "practice_when": shown.practice_when,
    }


def message_context(notification: Notification) -> dict[str, Any]:
    """Everything a template may use; names and numbers are read now, never stored."""
    patient = notification.patient
    offer = db.session.get(Offer, notification.offer_id) if notification.offer_id else None
    ctx = reply_context(patient, offer) | {"notification": notification, **notification.context}
    if offer is not None:
        ctx["expires"] = when(offer.window_expires_at, patient.timezone, "short")
    if notification.appointment_id:
        appointment = db.session.get(Appointment, notification.appointment_id)
        ctx |= slot_context(appointment.slot, patient.timezone)
        ctx["appointment"] = appointment
        ctx["appointment_link"] = appointment_url(
            appointment.id, patient.id, appointment.slot.start_at
        )
        ctx["asks_confirmation"] = appointment.status == AppointmentStatus.BOOKED
        moved_from = notification.context.get("moved_from")
        if moved_from:
            earlier = datetime.fromisoformat(moved_from)
            ctx["moved_from"] = when(earlier, patient.timezone)
            ctx["moved_from_short"] = when(earlier, patient.timezone, "short")
        if notification.purpose == Purpose.NO_SHOW and appointment.no_show_at is not None:
            ctx["rebook_link"] = rebook_url(appointment.id, patient.id, appointment.no_show_at)
    return ctx


def patient_link(notification: Notification) -> str | None:
    """Return the page the message points the patient to (offer or appointment), if any."""
    patient = notification.patient
    if notification.offer_id:
        offer = db.session.get(Offer, notification.offer_id)
        return offer_url(offer.id, patient.id, offer.slot.start_at) if offer else None
    if notification.appointment_id:
        appointment = db.session.get(Appointment, notification.appointment_id)
        if appointment is not None:
            return appointment_url(appointment.id, patient.id, appointment.slot.start_at)
    return None


def render_message(notification: Notification, channel: Channel) -> Message:
    """Render ``notification`` for ``channel``."""
    ctx = message_context(notification)
    name = notification.purpose.value
    if channel == Channel.SMS:
        body = render_template(f"sms/{name}.txt", **ctx).strip()
        return Message(body=body, links=_URL.findall(body))
    if channel == Channel.EMAIL:
        text = render_template(f"emails/{name}.txt", **ctx).strip()
        html = render_template(f"emails/{name}.html", **ctx)
        subject = render_template(f"emails/{name}.subject.txt", **ctx).strip()
        return Message(
            body=text,
            subject=subject,
            html=html,
            links=_URL.findall(text),
            attachments=_email_attachments(notification, ctx),
        )
    if channel == Channel.VOICE:
        body = render_template(f"voice/{name}.txt", **ctx).strip()
        return Message(body=body)
    body = render_template(f"sms/{name}.txt", **ctx).strip()
    return Message(body=body, links=_URL.findall(body))


def _email_attachments(notification: Notification, ctx: dict[str, Any]) -> list[Attachment]:
    """The appointment's calendar file for purposes that confirm (or move) a booking.

    A move is a confirmation with ``moved_from``: the same UID with a higher SEQUENCE,
    so the patient's calendar updates its entry."""
    appointment = ctx.get("appointment")
    if notification.purpose not in CALENDAR_PURPOSES or appointment is None:
        return []
    return [
        Attachment(
            filename=ICS_FILENAME,
            content=appointment_ics(appointment),
            maintype="text",
            subtype="calendar",
            params={"method": CALENDAR_PURPOSES[notification.purpose], "charset": "utf-8"},
        )
    ]


def reply_context(patient: Patient | None, offer: Offer | None = None) -> dict[str, Any]:
    """What the reply templates (texts and call prompts) may use (no patient: a stranger)."""
    ctx: dict[str, Any] = {
        "practice": current_app.config["PRACTICE_NAME"],
        "first_name": patient.first_name if patient is not None else "there",
        "offer": offer,
        "still_waitlisted": patient is not None
        and still_waitlisted(patient.id, offer.waitlist_entry_id if offer is not None else None),
    }
    if offer is not None:
        ctx |= slot_context(offer.slot, patient.timezone)
        ctx["offer_link"] = offer_url(offer.id, patient.id, offer.slot.start_at)
    return ctx


def render_reply(
    template: str, patient: Patient | None, offer: Offer | None = None, **extra: Any
) -> str:
    """Render a short reply (``sms/…`` or ``voice/…``) for ``patient``."""
    return render_template(template, **reply_context(patient, offer), **extra).strip()
