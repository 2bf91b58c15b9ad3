"""The clinic's catalogue: locations, practitioners (and what they perform), services.

Admins edit it on the settings pages; the practice's scheduling system syncs
practitioners through the API. Every change is audited with before and after.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portal.db import db
from portal.models import Location, Practitioner, Service
from portal.services.audit import Action, Actor, record, snapshot
from portal.services.errors import DomainError
from portal.services.patients import is_valid_timezone
from portal.services.phones import parse_phone
from portal.services.waitlist import parse_windows

MAX_NAME = 120
MAX_ADDRESS = 240
MAX_DURATION = 12 * 60
MAX_PRICE_CENTS = 10_000_000
CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,39}")
LOCATION_FIELDS = ("name", "timezone", "phone", "address", "opening_hours")
PRACTITIONER_FIELDS = ("name", "location_id", "active")
SERVICE_FIELDS = (
    "name",
    "category",
    "duration_minutes",
    "min_fill_minutes",
    "price_cents",
    "active",
)


def _name(value: str, what: str = "name") -> str:
    cleaned = " ".join((value or "").replace("\x00", "").split())
    if not cleaned or len(cleaned) > MAX_NAME:
        raise DomainError(f"Give a {what} of 1 to {MAX_NAME} characters.", code="invalid_name")
    return cleaned


def _audit(
    actor: Actor, action: Action, row: Any, before: dict[str, Any] | None, fields: tuple[str, ...]
) -> None:
    after = snapshot(row, *fields)
    if before is not None and before == after:
        return
    record(actor, action, row, before=before, after=after)


@dataclass(frozen=True)
class LocationInput:
    name: str
    timezone: str
    phone: str = ""
    address: str = ""
    opening_hours: list[dict[str, Any]] | None = None


def save_location(data: LocationInput, actor: Actor, location: Location | None = None) -> Location:
    """Create a location, or update ``location``; the phone is stored as E.164."""
    name = _name(data.name)
    zone = data.timezone.strip()
    if not is_valid_timezone(zone):
        raise DomainError("Choose a time zone such as America/New_York.", code="invalid_timezone")
    phone = ""
    if data.phone.strip():
        parsed = parse_phone(data.phone)
        if not parsed.valid:
            raise DomainError(parsed.message, code="invalid_phone")
        phone = parsed.e164 or ""
    address = " ".join(data.address.split())
    if len(address) > MAX_ADDRESS:
        raise DomainError(
            f"Keep the address under {MAX_ADDRESS} characters.", code="invalid_address"
        )
    hours = parse_windows(data.opening_hours)
    before = snapshot(location, *LOCATION_FIELDS) if location else None
    location = location or Location()
    location.name, location.timezone, location.phone = name, zone, phone
    location.address, location.opening_hours = address, hours
    db.session.add(location)
    db.session.flush()
    action = Action.LOCATION_UPDATED if before else Action.LOCATION_CREATED
    _audit(actor, action, location, before, LOCATION_FIELDS)
    return location


@dataclass(frozen=True)
class PractitionerInput:
    name: str
    location_id: int
    service_ids: Iterable[int] | None = None  # None: leave the list as it is
    active: bool = True


def _services(ids: Iterable[int]) -> list[Service]:
    wanted = sorted(set(ids))
    found = list(db.session.scalars(sa.select(Service).where(Service.id.in_(wanted))))
    missing = set(wanted) - {s.id for s in found}
    if missing:
        raise DomainError(
            f"There is no service with id {min(missing)}.",
            code="unknown_service",
            details={"service_ids": sorted(missing)},
        )
    return sorted(found, key=lambda s: (s.name, s.id))


def save_practitioner(
    data: PractitionerInput, actor: Actor, practitioner: Practitioner | None = None
) -> Practitioner:
    """Create a practitioner, or update ``practitioner`` (location, services, active)."""
    name = _name(data.name)
    if db.session.get(Location, data.location_id) is None:
        raise DomainError(
            f"There is no location with id {data.location_id}.", code="unknown_location"
        )
    before = None
    if practitioner is not None:
        before = snapshot(practitioner, *PRACTITIONER_FIELDS)
        before["service_ids"] = [s.id for s in practitioner.services]
    practitioner = practitioner or Practitioner()
    practitioner.name, practitioner.location_id = name, data.location_id
    practitioner.active = bool(data.active)
    if data.service_ids is not None:
        practitioner.services = _services(data.service_ids)
    db.session.add(practitioner)
    db.session.flush()
    after = snapshot(practitioner, *PRACTITIONER_FIELDS)
    after["service_ids"] = [s.id for s in practitioner.services]
    if before != after:
        action = Action.PRACTITIONER_UPDATED if before else Action.PRACTITIONER_CREATED
        record(actor, action, practitioner, before=before, after=after)
    return practitioner


@dataclass(frozen=True)
class ServiceInput:
    name: str
    category: str
    duration_minutes: int
    price_cents: int
    min_fill_minutes: int = 30
    active: bool = True


def save_service(data: ServiceInput, actor: Actor, service: Service | None = None) -> Service:
    """Create a service, or update ``service``; money is integer cents."""
    name = _name(data.name)
    category = data.category.strip().lower()
    if not CATEGORY.fullmatch(category):
        raise DomainError(
            "A category is a short lower-case word (letters, digits, _), e.g. injectables.",
            code="invalid_category",
        )
    if not 1 <= data.duration_minutes <= MAX_DURATION:
        raise DomainError(
            f"The duration must be 1 to {MAX_DURATION} minutes.", code="invalid_duration"
        )
    if not 1 <= data.min_fill_minutes <= data.duration_minutes:
        raise DomainError(
            "The shortest refill must be at least 1 minute and at most the duration.",
            code="invalid_duration",
        )
    if not 0 <= data.price_cents <= MAX_PRICE_CENTS:
        raise DomainError("The price must be between $0 and $100,000.", code="invalid_price")
    before = snapshot(service, *SERVICE_FIELDS) if service else None
    service = service or Service()
    service.name, service.category = name, category
    service.duration_minutes, service.min_fill_minutes = (
        data.duration_minutes,
        data.min_fill_minutes,
    )
    service.price_cents, service.active = data.price_cents, bool(data.active)
    db.session.add(service)
    db.session.flush()
    action = Action.SERVICE_UPDATED if before else Action.SERVICE_CREATED
    _audit(actor, action, service, before, SERVICE_FIELDS)
    return service


def categories() -> list[str]:
    """Every service category in use, sorted."""
    return sorted(set(db.session.scalars(sa.select(Service.category).distinct())))
