"""View models for the patient pages: slots, offers and appointments as display strings.

Everything here only reads; the views in ``portal.web.patient`` decide and commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app, url_for

from portal.db import db, now_utc
from portal.models import Appointment, Charge, Location, Offer, Patient, Slot
from portal.models.enums import (
    INACTIVE_APPOINTMENT_STATUSES,
    ChargeStatus,
    ReminderStatus,
)
from portal.services import ledger
from portal.services.alternatives import Alternative
from portal.services.cancellation import fee_charge
from portal.services.holds import payment_required
from portal.services.links import appointment_token
from portal.services.phones import display_phone
from portal.services.presentation import (
    SlotView,
    slot_view,
    when,
    zone_choices,
    zone_label,
    zone_options_html,
)
from portal.services.reminders import reminders_for
from portal.services.waitlist import still_waitlisted

#: How long an appointment link stays readable after the slot (as ``links.appointment_url``).


@dataclass(frozen=True)
class AlternativeView:
    slot: SlotView
    reasons: str  # "Same practitioner · Same day"


def alternative_views(alternatives: list[Alternative], patient_tz: str) -> list[AlternativeView]:
    """Display the scored alternatives, best first, with their human reasons."""
    return [
        AlternativeView(slot_view(alt.slot, patient_tz), " · ".join(alt.reasons) or "Another time")
        for alt in alternatives
    ]


def needs_payment(patient: Patient) -> bool:
    """Whether the patient must pay before a booking completes (SPEC §3.8)."""
    return payment_required(patient) is not None


def appointment_for_offer(offer: Offer) -> Appointment | None:
    """The appointment an accepted offer produced."""
    return db.session.scalar(
        sa.select(Appointment)
        .where(Appointment.offer_id == offer.id)
        .order_by(Appointment.id.desc())
        .limit(1)
    )


def booked_instead(offer: Offer) -> Appointment | None:
    """An active booking of the same service the patient made after this offer ended
    (another time, or this very slot once the offer had run out)."""
    return db.session.scalar(
        sa.select(Appointment)
        .join(Slot, Slot.id == Appointment.slot_id)
        .where(
            Appointment.patient_id == offer.patient_id,
            Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
            Appointment.offer_id.is_distinct_from(offer.id),
            Appointment.booked_at >= offer.created_at,
            Slot.service_id == offer.slot.service_id,
        )
        .order_by(Appointment.id.desc())
        .limit(1)
    )


def pending_charge(offer: Offer) -> Charge | None:
    """The deposit or prepayment awaiting payment for a held offer."""
    return ledger.hold_charge(offer.id)


def cancellation_summary(appointment: Appointment) -> dict[str, Any] | None:
    """What the appointment page says about a patient's cancellation: fee, waiver, waitlist."""
    if not appointment.cancelled_by_patient:
        return None
    charge = fee_charge(appointment.id)
    status = ledger.status_of(charge.id) if charge else None
    return {
        "fee_cents": appointment.cancellation_fee_cents or 0,
        "paid": status == ChargeStatus.SUCCEEDED,
        "waived": status == ChargeStatus.WAIVED,
        "rejoined": appointment.grace_cancellation
        and still_waitlisted(appointment.patient_id, appointment.waitlist_entry_id),
    }


def appointment_path(appointment: Appointment) -> str:
    """Return the site-relative signed link to an appointment page."""
    token = appointment_token(appointment.id, appointment.patient_id, appointment.slot.start_at)
    return url_for("patient.appointment", token=token)


def clinic_phone(slot: Slot | None = None) -> str:
    """The number (as stored, E.164) a patient should call: the slot's location's, else
    the clinic's.

    Without a slot (an invalid link names none) it is ``CLINIC_PHONE`` when configured,
    else the first location's number; empty only when there is no number at all.
    """
    if slot is not None and slot.location.phone:
        return slot.location.phone
    configured = current_app.config.get("CLINIC_PHONE")
    if configured:
        return configured
    first = db.session.scalar(
        sa.select(Location.phone).where(Location.phone != "").order_by(Location.id).limit(1)
    )
    return first or ""


def page_context(slot: Slot | None = None, patient: Patient | None = None) -> dict[str, Any]:
    """The layout's variables: practice name, the number to call, the greeting."""
    phone = clinic_phone(slot)
    return {
        "practice_name": current_app.config["PRACTICE_NAME"],
        "location_phone": display_phone(phone) or None,
        "location_phone_tel": phone or None,
        "first_name": patient.first_name if patient else None,
    }


def zone_picker(patient: Patient, slot: Slot) -> dict[str, Any]:
    """What "Not your time zone?" shows: the zone in use and the zones to pick from."""
    now = now_utc()
    common, _ = zone_choices(now, patient.timezone, slot.location.timezone)
    return {
        "zone_now": zone_label(patient.timezone, now),
        "zone_current": patient.timezone,
        "zone_common": common,
        "zone_others_html": zone_options_html(now, patient.timezone, slot.location.timezone),
    }


def upcoming_reminders(appointment: Appointment) -> list[str]:
    """When the appointment's reminders will go, as the patient reads it."""
    return [
        when(r.due_at, appointment.patient.timezone)
        for r in reminders_for(appointment.id)
        if r.status == ReminderStatus.SCHEDULED
    ]
