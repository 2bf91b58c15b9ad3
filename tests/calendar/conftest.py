"""Data for the calendar tests: one booked visit at a clinic, in the clinic's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from portal.db import db
from portal.models import Appointment, Patient
from portal.models.enums import AppointmentSource, AppointmentStatus
from portal.services.links import LinkPurpose, make_token
from tests import factories as f
from tests.notify.conftest import _quiet_hours_off, providers  # noqa: F401 (fixtures)

LA = "America/Los_Angeles"
NEW_YORK = "America/New_York"
PATIENT_NAME = "Zelda Quimby"


@dataclass
class Visit:
    appointment: Appointment
    patient: Patient
    token: str

    @property
    def path(self) -> str:
        return f"/a/{self.token}"


def book_visit(
    tz: str,
    local_start: datetime,
    *,
    minutes: int = 45,
    status: AppointmentStatus = AppointmentStatus.CONFIRMED,
) -> Visit:
    """An appointment at a clinic in ``tz`` starting at the naive wall-clock ``local_start``."""
    clinic = f.location(
        name="Sunset Boulevard",
        timezone=tz,
        phone="+13105550100",
        address="8500 Sunset Blvd, West Hollywood",
    )
    doctor = f.practitioner(location=clinic, name="Dr. Maya Lee")
    filler = f.service(name="Lip filler", duration_minutes=minutes)
    slot = f.slot(
        start_at=local_start.replace(tzinfo=ZoneInfo(tz)), practitioner=doctor, service=filler
    )
    patient = f.patient(name=PATIENT_NAME, timezone=NEW_YORK)
    appointment = f.appointment(
        slot=slot, patient=patient, status=status, source=AppointmentSource.WAITLIST
    )
    db.session.commit()
    expires = slot.start_at + timedelta(days=30)
    token = make_token(LinkPurpose.APPOINTMENT, appointment.id, patient.id, expires)
    return Visit(appointment, patient, token)


@pytest.fixture
def la_visit(app: Flask) -> Visit:
    """Tue 12 Jan 2027, 2:30-3:15 PM PST in Los Angeles (22:30Z)."""
    return book_visit(LA, datetime(2027, 1, 12, 14, 30))


@pytest.fixture
def dst_visit(app: Flask) -> Visit:
    """Sun 14 Mar 2027, 10:00 EDT in New York: clocks went forward at 2:00 that morning."""
    return book_visit(NEW_YORK, datetime(2027, 3, 14, 10, 0))
