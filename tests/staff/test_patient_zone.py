"""Staff: a patient's time zone (set or detected again), the "No SMS" marker, reminders."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models.enums import AppointmentSource, TimezoneSource
from portal.services import booking
from portal.services.appointments import confirm_appointment
from portal.services.audit import SYSTEM, Actor
from tests import factories as f
from tests.conftest import csrf_token_from


def test_staff_set_a_zone_and_can_detect_it_again(signed_in: FlaskClient) -> None:
    patient = f.patient(phone_e164="+18085550123", timezone="America/New_York")
    db.session.commit()
    url = f"/staff/patients/{patient.id}"
    token = csrf_token_from(signed_in.get(url).text)

    chosen = signed_in.post(
        f"{url}/timezone", data={"csrf_token": token, "timezone": "Europe/London"}
    )
    assert chosen.status_code == 303
    db.session.expire_all()
    assert (patient.timezone, patient.timezone_source) == ("Europe/London", TimezoneSource.EXPLICIT)
    assert "Time zone set: Europe/London" in signed_in.get(url).text

    signed_in.post(f"{url}/timezone", data={"csrf_token": token, "timezone": "detect"})
    db.session.expire_all()
    assert (patient.timezone, patient.timezone_source) == ("Pacific/Honolulu", TimezoneSource.PHONE)

    bad = signed_in.post(f"{url}/timezone", data={"csrf_token": token, "timezone": "Nowhere"})
    assert "Unknown time zone" in signed_in.get(bad.location).text


def test_an_opted_out_number_shows_no_sms(signed_in: FlaskClient) -> None:
    patient = f.patient(name="Quiet Quinn", sms_opt_out=True)
    f.patient(name="Chatty Chris")
    db.session.commit()

    listing = signed_in.get("/staff/patients").text
    page = signed_in.get(f"/staff/patients/{patient.id}").text

    assert listing.count(">No SMS</span>") == 1
    assert ">No SMS</span>" in page


def test_staff_see_the_confirmation_and_the_reminders(signed_in: FlaskClient) -> None:
    slot = f.slot(start_at=now_utc().replace(second=0, microsecond=0) + timedelta(days=6))
    patient = f.patient()
    appointment = booking.book_slot(slot.id, patient, source=AppointmentSource.STAFF, actor=SYSTEM)
    confirm_appointment(appointment, Actor.patient(patient.id))
    db.session.commit()

    page = signed_in.get(f"/staff/patients/{patient.id}").text

    assert "Confirmed " in page
    assert page.count("Scheduled · ") == 2
