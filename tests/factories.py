"""Plain factory functions: sensible defaults, keyword overrides, flushed not committed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from portal.db import db, now_utc
from portal.models import (
    Appointment,
    Location,
    Offer,
    Patient,
    Practitioner,
    Service,
    Slot,
    StaffUser,
    WaitlistEntry,
)
from portal.models.enums import (
    INACTIVE_APPOINTMENT_STATUSES,
    AppointmentSource,
    AppointmentStatus,
    OfferStatus,
    SlotStatus,
    StaffRole,
    TimezoneSource,
)

_seq = itertools.count(1)


def _save(obj: Any) -> Any:
    db.session.add(obj)
    db.session.flush()
    return obj


def location(**kw: Any) -> Location:
    n = next(_seq)
    defaults = {"name": f"Clinic {n}", "timezone": "America/New_York", "phone": "+12125550100"}
    return _save(Location(**(defaults | kw)))


def practitioner(**kw: Any) -> Practitioner:
    if "location" not in kw and "location_id" not in kw:
        kw["location"] = location()
    return _save(Practitioner(**({"name": f"Dr. Practitioner {next(_seq)}"} | kw)))


def service(**kw: Any) -> Service:
    defaults = {
        "name": f"Service {next(_seq)}",
        "category": "injectables",
        "duration_minutes": 60,
        "price_cents": 40000,
    }
    return _save(Service(**(defaults | kw)))


def patient(**kw: Any) -> Patient:
    n = next(_seq)
    defaults = {
        "name": f"Patient {n}",
        "phone_raw": f"+1212555{n % 100:04d}",
        "phone_e164": f"+1212555{n % 100:04d}",
        "email": f"patient{n}@example.test",
        "timezone": "America/New_York",
        "timezone_source": TimezoneSource.PHONE,
    }
    return _save(Patient(**(defaults | kw)))


def slot(
    *,
    start_at: datetime | None = None,
    minutes: int | None = None,
    practitioner: Practitioner | None = None,
    service: Service | None = None,
    **kw: Any,
) -> Slot:
    from tests import factories as f

    practitioner = practitioner or f.practitioner()
    service = service or f.service()
    start_at = start_at or (now_utc() + timedelta(days=1)).replace(second=0, microsecond=0)
    duration = timedelta(minutes=minutes or service.duration_minutes)
    defaults = {
        "location_id": practitioner.location_id,
        "practitioner_id": practitioner.id,
        "service_id": service.id,
        "start_at": start_at,
        "end_at": start_at + duration,
        "status": SlotStatus.OPEN,
        "opened_at": now_utc(),
    }
    return _save(Slot(**(defaults | kw)))


def waitlist_entry(
    *, patient: Patient | None = None, slot: Slot | None = None, **kw: Any
) -> WaitlistEntry:
    from tests import factories as f

    patient = patient or f.patient()
    if slot is not None:
        kw.setdefault("service_id", slot.service_id)
        kw.setdefault("location_id", slot.location_id)
    if "service_id" not in kw:
        kw["service_id"] = f.service().id
    if "location_id" not in kw:
        kw["location_id"] = f.location().id
    return _save(WaitlistEntry(patient_id=patient.id, **kw))


def offer(*, slot: Slot, entry: WaitlistEntry | None = None, **kw: Any) -> Offer:
    from tests import factories as f

    entry = entry or f.waitlist_entry(slot=slot)
    defaults = {
        "slot_id": slot.id,
        "waitlist_entry_id": entry.id,
        "patient_id": entry.patient_id,
        "status": OfferStatus.PENDING,
        "wave": 1,
        "window_expires_at": now_utc() + timedelta(minutes=30),
    }
    return _save(Offer(**(defaults | kw)))


def appointment(*, slot: Slot, patient: Patient | None = None, **kw: Any) -> Appointment:
    """An appointment in ``slot``; an active one marks the slot booked (the invariant)."""
    from tests import factories as f

    patient = patient or f.patient()
    defaults = {
        "slot_id": slot.id,
        "patient_id": patient.id,
        "status": AppointmentStatus.BOOKED,
        "source": AppointmentSource.STAFF,
    }
    made = Appointment(**(defaults | kw))
    if made.status not in INACTIVE_APPOINTMENT_STATUSES:
        slot.status = SlotStatus.BOOKED
    return _save(made)


def staff_user(*, password: str = "correct horse battery", **kw: Any) -> StaffUser:
    from portal.services.passwords import hash_password

    n = next(_seq)
    defaults = {
        "email": f"staff{n}@clinic.test",
        "name": f"Staff {n}",
        "role": StaffRole.STAFF,
        "password_hash": hash_password(password),
    }
    return _save(StaffUser(**(defaults | kw)))


@dataclass
class BroadcastScene:
    """One slot offered to many patients at once, and two open alternatives beside it."""

    slot: Slot
    alternatives: list[Slot]
    offers: list[Offer]
    tokens: list[str]  # each patient's signed offer link token


def broadcast_scene(patients: int, category: str = "injectables") -> BroadcastScene:
    """Build and commit a broadcast wave of ``patients`` offers (races, the bench)."""
    from sqlalchemy.dialects.postgresql import insert

    from portal.models import OfferPolicy
    from portal.models.enums import OfferMode
    from portal.services.filling import advance
    from portal.services.links import LinkPurpose, make_token
    from tests import factories as f

    db.session.execute(
        insert(OfferPolicy)
        .values(
            category=category, mode=OfferMode.BROADCAST, created_at=now_utc(), updated_at=now_utc()
        )
        .on_conflict_do_nothing(index_elements=[OfferPolicy.category])
    )
    practitioner = f.practitioner(location=f.location(timezone="America/New_York"))
    service = f.service(category=category, duration_minutes=30)
    start = (now_utc() + timedelta(days=1)).replace(second=0, microsecond=0)
    slot = f.slot(start_at=start, practitioner=practitioner, service=service)
    alternatives = [
        f.slot(start_at=start + timedelta(hours=hours), practitioner=practitioner, service=service)
        for hours in (2, 4)
    ]
    for _ in range(patients):
        f.waitlist_entry(patient=f.patient(), slot=slot)
    offers = advance(slot.id).offers
    db.session.commit()
    if len(offers) != patients:
        raise RuntimeError(f"expected {patients} offers, the wave sent {len(offers)}")
    expires = start + timedelta(days=2)
    tokens = [make_token(LinkPurpose.OFFER, o.id, o.patient_id, expires) for o in offers]
    return BroadcastScene(slot, alternatives, offers, tokens)
