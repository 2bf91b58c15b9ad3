"""Patients: registration with a validated phone number and a resolved time zone."""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa

from portal.db import db
from portal.models import Location, Patient
from portal.models.enums import TimezoneSource
from portal.services import audit
from portal.services.audit import Action, Actor
from portal.services.errors import DomainError
from portal.services.phones import known_zones, parse_phone, timezone_for_phone
from portal.services.reminders import replan_for_patient

#: Used only when the practice has no location at all yet.
FALLBACK_TIMEZONE = "UTC"
MAX_NAME_LENGTH = 120
MAX_EMAIL_LENGTH = 254

# Files in the zone database that are not real places.
_NOT_A_PLACE = frozenset({"localtime", "Factory", "posixrules"})
# Deliberately loose: one @, something before it, a dotted domain after it, no spaces.
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


class InvalidPhone(DomainError):
    """The phone number is not a valid, dialable number."""

    default_code = "invalid_phone"
    default_message = "That phone number is not valid."


class DuplicatePhone(DomainError):
    """Another patient already has this number; ``patients`` lists them."""

    default_code = "duplicate_phone"
    default_status = 409

    def __init__(self, patients: list[Patient]) -> None:
        names = ", ".join(p.name for p in patients[:3])
        verb = "has" if len(patients) == 1 else "have"
        super().__init__(
            f"{names} already {verb} this phone number.",
            details={"patient_ids": [p.id for p in patients]},
        )
        self.patients = patients


def patients_with_phone(e164: str | None, except_id: int | None = None) -> list[Patient]:
    """Other patients registered with the number ``e164``."""
    if not e164:
        return []
    query = sa.select(Patient).where(Patient.phone_e164 == e164)
    if except_id is not None:
        query = query.where(Patient.id != except_id)
    return list(db.session.scalars(query.order_by(Patient.id).limit(10)))


def refuse_duplicate_phone(e164: str | None, except_id: int | None = None) -> None:
    """Raise ``DuplicatePhone`` if another patient has the number ``e164``."""
    others = patients_with_phone(e164, except_id)
    if others:
        raise DuplicatePhone(others)


def is_valid_timezone(name: str) -> bool:
    """Return whether ``name`` is an IANA zone of a real place (e.g. America/New_York)."""
    return 0 < len(name) <= 64 and name in known_zones() and name not in _NOT_A_PLACE


def clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH or "\x00" in cleaned:
        raise DomainError(f"Give a name of 1 to {MAX_NAME_LENGTH} characters.", code="invalid_name")
    return cleaned


def clean_email(email: str | None) -> str | None:
    cleaned = (email or "").strip()
    if not cleaned:
        return None
    if len(cleaned) > MAX_EMAIL_LENGTH or not _EMAIL_RE.match(cleaned):
        raise DomainError("That email address is not valid.", code="invalid_email")
    return cleaned


def resolve_timezone(
    explicit: str | None, phone_e164: str | None, home_location: Location | None
) -> tuple[str, TimezoneSource]:
    """Pick the patient's zone: explicit, else the phone's, else the (home) location's."""
    if explicit is not None and explicit.strip():
        name = explicit.strip()
        if not is_valid_timezone(name):
            raise DomainError(
                "Unknown time zone; use an IANA name such as America/New_York.",
                code="invalid_timezone",
            )
        return name, TimezoneSource.EXPLICIT
    from_phone = timezone_for_phone(phone_e164)
    if from_phone:
        return from_phone, TimezoneSource.PHONE
    location = (
        home_location
        or db.session.scalars(sa.select(Location).order_by(Location.id).limit(1)).first()
    )
    return (location.timezone if location else FALLBACK_TIMEZONE), TimezoneSource.LOCATION


def create_patient(
    *,
    name: str,
    phone: str,
    email: str | None = None,
    timezone: str | None = None,
    home_location: Location | None = None,
    actor: Actor,
    allow_duplicate_phone: bool = True,
) -> Patient:
    """Register a patient; the phone must be valid, the zone is resolved and recorded.

    With ``allow_duplicate_phone=False`` a number another patient has is refused
    (``DuplicatePhone``): staff confirm first that the two really are different people.
    """
    cleaned_name = clean_name(name)
    parsed = parse_phone(phone)
    if not parsed.valid:
        raise InvalidPhone(parsed.message or None, details={"reason": parsed.reason})
    if not allow_duplicate_phone:
        refuse_duplicate_phone(parsed.e164)
    cleaned_email = clean_email(email)
    zone, source = resolve_timezone(timezone, parsed.e164, home_location)
    patient = Patient(
        name=cleaned_name,
        phone_raw=phone.strip(),
        phone_e164=parsed.e164,
        email=cleaned_email,
        timezone=zone,
        timezone_source=source,
        home_location_id=home_location.id if home_location else None,
    )
    db.session.add(patient)
    db.session.flush()
    audit.record(
        actor,
        Action.PATIENT_CREATED,
        patient,
        after={
            "timezone": zone,
            "timezone_source": source,
            "home_location_id": patient.home_location_id,
        },
    )
    return patient


def set_timezone(
    patient: Patient, timezone: str | None, *, actor: Actor, now: datetime | None = None
) -> Patient:
    """Set the patient's zone (an explicit choice), or with None detect it again.

    Detected again means from the phone number when it names one zone, else the home
    location's. Reminders of upcoming visits are replanned for the new zone.
    """
    before = {"timezone": patient.timezone, "timezone_source": patient.timezone_source}
    zone, source = resolve_timezone(timezone, patient.phone_e164, patient.home_location)
    if (zone, source) == (patient.timezone, patient.timezone_source):
        return patient
    patient.timezone, patient.timezone_source = zone, source
    audit.record(
        actor,
        Action.PATIENT_TIMEZONE_CHANGED,
        patient,
        before=before,
        after={"timezone": zone, "timezone_source": source},
    )
    if zone != before["timezone"]:
        replan_for_patient(patient, actor, now)
    return patient
