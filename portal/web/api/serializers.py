"""JSON shapes of the API's objects (CONTRACT.md): UTC ISO 8601 times, integer cents."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from portal.models import (
    Appointment,
    Location,
    Offer,
    Patient,
    Practitioner,
    Service,
    Slot,
    WaitlistEntry,
)
from portal.models.enums import ReminderStatus, SlotStatus
from portal.services.appointments import active_appointment
from portal.services.reminders import reminders_for


def iso(value: datetime | None) -> str | None:
    """Return an aware instant as ISO 8601 in UTC (``+00:00``), or None."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def iso_date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def hhmm(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def location_json(location: Location) -> dict[str, Any]:
    return {
        "id": location.id,
        "name": location.name,
        "timezone": location.timezone,
        "phone": location.phone,
    }


def practitioner_json(practitioner: Practitioner) -> dict[str, Any]:
    return {
        "id": practitioner.id,
        "name": practitioner.name,
        "location_id": practitioner.location_id,
        "active": practitioner.active,
        "service_ids": [s.id for s in practitioner.services],
    }


def service_json(service: Service) -> dict[str, Any]:
    return {
        "id": service.id,
        "name": service.name,
        "category": service.category,
        "duration_minutes": service.duration_minutes,
        "price_cents": service.price_cents,
        "active": service.active,
    }


def patient_json(patient: Patient) -> dict[str, Any]:
    return {
        "id": patient.id,
        "name": patient.name,
        "phone_e164": patient.phone_e164,
        "email": patient.email,
        "timezone": patient.timezone,
        "timezone_source": patient.timezone_source.value,
    }


def entry_json(entry: WaitlistEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "patient_id": entry.patient_id,
        "service_id": entry.service_id,
        "location_id": entry.location_id,
        "preferred_practitioner_id": entry.preferred_practitioner_id,
        "earliest": iso_date(entry.earliest),
        "latest": iso_date(entry.latest),
        "windows": list(entry.windows or []),
        "preferred_time": hhmm(entry.preferred_time),
        "short_notice_ok": entry.short_notice_ok,
        "priority": entry.priority,
        "status": entry.status.value,
        "created_at": iso(entry.created_at),
    }


def slot_json(slot: Slot) -> dict[str, Any]:
    appointment = active_appointment(slot.id) if slot.status == SlotStatus.BOOKED else None
    return {
        "id": slot.id,
        "location_id": slot.location_id,
        "practitioner_id": slot.practitioner_id,
        "service_id": slot.service_id,
        "start_at": iso(slot.start_at),
        "end_at": iso(slot.end_at),
        "status": slot.status.value,
        "opened_at": iso(slot.opened_at),
        "appointment_id": appointment.id if appointment else None,
    }


def appointment_json(appointment: Appointment) -> dict[str, Any]:
    return {
        "id": appointment.id,
        "slot_id": appointment.slot_id,
        "patient_id": appointment.patient_id,
        "status": appointment.status.value,
        "source": appointment.source.value,
        "booked_at": iso(appointment.booked_at),
        "confirmed_at": iso(appointment.confirmed_at),
        "checked_in_at": iso(appointment.checked_in_at),
        "completed_at": iso(appointment.completed_at),
        "no_show_at": iso(appointment.no_show_at),
        "cancelled_at": iso(appointment.cancelled_at),
        "cancellation_fee_cents": appointment.cancellation_fee_cents,
        "reminders": [
            {"due_at": iso(r.due_at), "status": r.status.value}
            for r in reminders_for(appointment.id)
            if r.status in (ReminderStatus.SCHEDULED, ReminderStatus.SENT)
        ],
        "cancellation_tier": appointment.cancellation_tier.value
        if appointment.cancellation_tier
        else None,
        "discount_percent": appointment.discount_percent,
    }


def offer_json(offer: Offer) -> dict[str, Any]:
    return {
        "id": offer.id,
        "slot_id": offer.slot_id,
        "patient_id": offer.patient_id,
        "waitlist_entry_id": offer.waitlist_entry_id,
        "status": offer.status.value,
        "wave": offer.wave,
        "window_expires_at": iso(offer.window_expires_at),
        "responded_at": iso(offer.responded_at),
    }
