"""Registering patients: phone validation and time-zone resolution (SPEC §6)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.db import db
from portal.models import AuditEvent
from portal.models.enums import TimezoneSource
from portal.services.audit import SYSTEM
from portal.services.errors import DomainError
from portal.services.patients import InvalidPhone, create_patient
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")


@pytest.mark.parametrize(
    ("phone", "zone"),
    [
        ("+1 212 555 0123", "America/New_York"),
        ("(310) 555-0142", "America/Los_Angeles"),
        ("+44 20 7946 0958", "Europe/London"),
    ],
)
def test_zone_is_detected_from_the_phone(phone: str, zone: str) -> None:
    f.location(timezone="America/Chicago")
    patient = create_patient(name="Ana Doe", phone=phone, actor=SYSTEM)
    assert patient.timezone == zone
    assert patient.timezone_source == TimezoneSource.PHONE


def test_explicit_zone_wins_over_the_phone() -> None:
    patient = create_patient(
        name="Ana", phone="+1 212 555 0123", timezone="Europe/Paris", actor=SYSTEM
    )
    assert (patient.timezone, patient.timezone_source) == ("Europe/Paris", TimezoneSource.EXPLICIT)


def test_toll_free_number_falls_back_to_the_home_location() -> None:
    f.location(timezone="America/Chicago")
    home = f.location(timezone="America/Denver")
    patient = create_patient(name="Ana", phone="1-800-555-0199", home_location=home, actor=SYSTEM)
    assert (patient.timezone, patient.timezone_source) == (
        "America/Denver",
        TimezoneSource.LOCATION,
    )
    assert patient.home_location_id == home.id


def test_without_a_home_location_the_first_location_is_used() -> None:
    f.location(timezone="America/Phoenix")
    f.location(timezone="America/Denver")
    patient = create_patient(name="Ana", phone="+1 800 555 0199", actor=SYSTEM)
    assert (patient.timezone, patient.timezone_source) == (
        "America/Phoenix",
        TimezoneSource.LOCATION,
    )


def test_with_no_location_at_all_utc_is_used() -> None:
    patient = create_patient(name="Ana", phone="+1 800 555 0199", actor=SYSTEM)
    assert patient.timezone == "UTC"


def test_phone_is_stored_raw_and_as_e164() -> None:
    patient = create_patient(name="  Ana   Doe ", phone=" (310) 555-0142 ", actor=SYSTEM)
    assert patient.phone_raw == "(310) 555-0142"
    assert patient.phone_e164 == "+13105550142"
    assert patient.name == "Ana Doe"


@pytest.mark.parametrize("phone", ["12345", "+1 555 555 5555", "", "call me"])
def test_invalid_phone_is_refused(phone: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        create_patient(name="Ana", phone=phone, actor=SYSTEM)
    assert info.value.code == "invalid_phone"
    assert info.value.status == 422
    assert info.value.details["reason"]


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "America", "America/", "../etc/passwd", "localtime", "x" * 300]
)
def test_unknown_explicit_zone_is_refused(zone: str) -> None:
    with pytest.raises(DomainError) as info:
        create_patient(name="Ana", phone="+1 212 555 0123", timezone=zone, actor=SYSTEM)
    assert info.value.code == "invalid_timezone"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "   "}, "invalid_name"),
        ({"name": "x" * 121}, "invalid_name"),
        ({"email": "not-an-email"}, "invalid_email"),
        ({"email": "a@b"}, "invalid_email"),
    ],
)
def test_bad_name_or_email_is_refused(kwargs: dict[str, str], code: str) -> None:
    args = {"name": "Ana", "phone": "+1 212 555 0123"} | kwargs
    with pytest.raises(DomainError) as info:
        create_patient(**args, actor=SYSTEM)
    assert info.value.code == code


def test_creation_is_audited_without_personal_data() -> None:
    patient = create_patient(
        name="Ana Doe", phone="+1 212 555 0123", email="ana@example.test", actor=SYSTEM
    )
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "patient.created")
    ).one()
    assert event.entity_id == patient.id
    text = str(event.after)
    for secret in ("Ana", "212", "5550123", "example.test"):
        assert secret not in text
    assert event.after == {
        "timezone": "America/New_York",
        "timezone_source": "phone",
        "home_location_id": None,
    }
