"""Texts about a booked visit: C (or YES after a reminder) confirms, R gets the reschedule
link, a question about cancelling gets the appointment page, HELP names the clinic.

YES is shared with offers ("Reply YES to book"), so it means whatever the patient was
asked last: if their latest relevant message is a reminder of an upcoming visit it
confirms that visit; if it is a still-open offer, it books the offer (unchanged).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from portal.db import db, now_utc
from portal.models import Appointment, Location, Notification, Patient, Slot
from portal.models.enums import NotificationStatus, Purpose
from portal.services.appointments import confirm_appointment
from portal.services.audit import Actor
from portal.services.errors import DomainError
from portal.services.links import appointment_url
from portal.services.notify.messages import render_reply, slot_context
from portal.services.phones import display_phone
from portal.services.reminders import REMINDABLE
from portal.services.replies.answers import latest_offer

log = logging.getLogger(__name__)

#: A reminder older than this no longer gives YES its meaning.
REMINDER_MEMORY = timedelta(days=4)


def latest_reminder(patient_ids: list[int], now: datetime) -> Notification | None:
    """The newest reminder these patients got whose visit is still ahead and booked."""
    return db.session.scalar(
        sa.select(Notification)
        .join(Appointment, Appointment.id == Notification.appointment_id)
        .join(Slot, Slot.id == Appointment.slot_id)
        .where(
            Notification.patient_id.in_(patient_ids),
            Notification.purpose == Purpose.REMINDER,
            Notification.status != NotificationStatus.CANCELLED,
            Notification.created_at > now - REMINDER_MEMORY,
            Appointment.status.in_(REMINDABLE),
            Slot.start_at > now,
        )
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(1)
    )


def yes_means_confirm(patient_ids: list[int], now: datetime | None = None) -> bool:
    """Whether a YES answers a reminder (newer than any open offer) rather than an offer."""
    now = now or now_utc()
    reminder = latest_reminder(patient_ids, now)
    if reminder is None:
        return False
    offer = latest_offer(patient_ids, pending_only=True)
    return offer is None or reminder.created_at > offer.created_at


def _visit(patients: list[Patient], now: datetime) -> Appointment | None:
    """The visit a reply is about: the one reminded last, else the next one booked."""
    reminder = latest_reminder([p.id for p in patients], now)
    if reminder is not None:
        return db.session.get(Appointment, reminder.appointment_id)
    return db.session.scalar(
        sa.select(Appointment)
        .join(Slot, Slot.id == Appointment.slot_id)
        .where(
            Appointment.patient_id.in_([p.id for p in patients]),
            Appointment.status.in_(REMINDABLE),
            Slot.start_at > now,
        )
        .order_by(Slot.start_at)
        .limit(1)
    )


def _visit_reply(patient: Patient, appointment: Appointment | None, answer: str) -> str:
    extra = {"answer": answer, "clinic_phone": display_phone(clinic_phone_for(patient))}
    if appointment is not None:
        link = appointment_url(appointment.id, appointment.patient_id, appointment.slot.start_at)
        extra |= slot_context(appointment.slot, patient.timezone)
        extra |= {"appointment_link": link, "reschedule_link": f"{link}/reschedule"}
    return render_reply("sms/reply_visit.txt", patient, **extra)


def confirm_by_text(patients: list[Patient]) -> str:
    """C (or YES after a reminder): confirm the visit (flushes; audited as the patient)."""
    now = now_utc()
    appointment = _visit(patients, now)
    if appointment is None:
        return _visit_reply(patients[0], None, "none")
    patient = appointment.patient
    try:
        changed = confirm_appointment(appointment, Actor.patient(patient.id), now)
    except DomainError:
        return _visit_reply(patient, appointment, "none")
    log.info("appointment %s confirmed by text (%s)", appointment.id, changed)
    return _visit_reply(patient, appointment, "confirmed" if changed else "already_confirmed")


def reschedule_link_reply(patients: list[Patient]) -> str:
    """R: the link to pick another time."""
    appointment = _visit(patients, now_utc())
    patient = appointment.patient if appointment is not None else patients[0]
    return _visit_reply(patient, appointment, "reschedule" if appointment else "none")


def cancel_help_reply(patients: list[Patient]) -> str:
    """A text about cancelling: cancelling is done on the appointment page (or by phone)."""
    appointment = _visit(patients, now_utc())
    patient = appointment.patient if appointment is not None else patients[0]
    return _visit_reply(patient, appointment, "cancel" if appointment else "none")


def clinic_phone_for(patient: Patient | None) -> str:
    """The number a patient should call: their next visit's clinic, their home clinic,
    ``CLINIC_PHONE``, else the first location's (as stored)."""
    if patient is not None:
        upcoming = db.session.scalar(
            sa.select(Location.phone)
            .join(Slot, Slot.location_id == Location.id)
            .join(Appointment, Appointment.slot_id == Slot.id)
            .where(
                Appointment.patient_id == patient.id,
                Appointment.status.in_(REMINDABLE),
                Slot.start_at > now_utc(),
                Location.phone != "",
            )
            .order_by(Slot.start_at)
            .limit(1)
        )
        if upcoming:
            return upcoming
        if patient.home_location is not None and patient.home_location.phone:
            return patient.home_location.phone
    configured = current_app.config.get("CLINIC_PHONE")
    if configured:
        return configured
    first = db.session.scalar(
        sa.select(Location.phone).where(Location.phone != "").order_by(Location.id).limit(1)
    )
    return first or ""


def help_reply(patient: Patient | None) -> str:
    """HELP, always answered: the clinic's name and number, and what to reply."""
    return render_reply(
        "sms/help.txt", patient, clinic_phone=display_phone(clinic_phone_for(patient))
    )
