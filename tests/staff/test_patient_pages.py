"""Patients: add and edit with a validated phone, duplicate warnings, texts, tier, the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import AuditEvent, Patient
from portal.models.enums import ChargeKind, FlagKind, TimezoneSource, WaitlistStatus
from portal.services import ledger
from portal.services.audit import SYSTEM
from tests import factories as f
from tests.staff import ops_factories as ops
from tests.staff.conftest import form_token


def _post(client: FlaskClient, path: str, **data: object) -> object:
    return client.post(path, data={"csrf_token": form_token(client, "/staff/patients"), **data})


def test_patient_pages_need_a_signed_in_user(client: FlaskClient) -> None:
    for path in ("/staff/patients/new", "/staff/patients/1", "/staff/patients/1/edit"):
        assert client.get(path).status_code == 302


def test_adding_a_patient_validates_the_phone_and_records_the_zone(signed_in: FlaskClient) -> None:
    page = signed_in.get("/staff/patients/new").text
    assert 'name="phone"' in page and 'list="zone-list"' in page
    response = _post(
        signed_in,
        "/staff/patients/new",
        name="  Ana   Doe ",
        phone="(310) 555-0142",
        email="ana@example.test",
    )
    assert response.status_code == 303
    patient = db.session.scalar(sa.select(Patient))
    assert (patient.name, patient.phone_e164) == ("Ana Doe", "+13105550142")
    assert (patient.timezone, patient.timezone_source) == (
        "America/Los_Angeles",
        TimezoneSource.PHONE,
    )
    record = signed_in.get(response.headers["Location"]).text
    assert "Ana Doe was added" in record and "from the phone number" in record


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"phone": "abc"}, "That does not look like a phone number."),
        ({"phone": "+1 212 000 0000"}, "That phone number does not exist"),
        ({"email": "not-an-email"}, "That email address is not valid."),
        ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"name": ""}, "Enter the patient&#39;s name."),
    ],
)
def test_bad_details_get_a_message_beside_the_field(
    signed_in: FlaskClient, data: dict[str, str], message: str
) -> None:
    body = {"name": "Ana Doe", "phone": "+13105550142"} | data
    response = _post(signed_in, "/staff/patients/new", **body)
    assert response.status_code == 422 and message in response.text
    assert 'class="field has-error"' in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0


def test_a_phone_another_patient_has_needs_confirming(signed_in: FlaskClient) -> None:
    f.patient(name="Mum Shares", phone_e164="+13105550142")
    db.session.commit()
    first = _post(signed_in, "/staff/patients/new", name="Kid Shares", phone="310-555-0142")
    assert first.status_code == 409
    assert "This phone number is already on file" in first.text and "Mum Shares" in first.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Patient)) == 1
    second = _post(
        signed_in,
        "/staff/patients/new",
        name="Kid Shares",
        phone="310-555-0142",
        confirm_duplicate="y",
    )
    assert second.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Patient)) == 2


def test_editing_keeps_an_explicit_zone_and_audits_without_the_number(
    signed_in: FlaskClient,
) -> None:
    patient = f.patient(name="Eve Edit", phone_e164="+12125550101", timezone="America/New_York")
    db.session.commit()
    form = signed_in.get(f"/staff/patients/{patient.id}/edit").text
    assert 'value="+12125550101"' in form
    response = _post(
        signed_in,
        f"/staff/patients/{patient.id}/edit",
        name="Eve Edit",
        phone="+12125550199",
        timezone="Europe/Paris",
    )
    assert response.status_code == 303
    db.session.expire_all()
    changed = db.session.get(Patient, patient.id)
    assert (changed.phone_e164, changed.timezone, changed.timezone_source) == (
        "+12125550199",
        "Europe/Paris",
        TimezoneSource.EXPLICIT,
    )
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "patient.updated"))
    assert "+12125550199" not in str(event.after) and "phone_e164" in event.after["fields"]


def test_texts_stop_at_once_and_restart_only_with_a_note(signed_in: FlaskClient) -> None:
    patient = f.patient()
    db.session.commit()
    _post(signed_in, f"/staff/patients/{patient.id}/texts", stop="1", note="recorded by staff")
    db.session.expire_all()
    assert db.session.get(Patient, patient.id).sms_opt_out is True
    refused = _post(signed_in, f"/staff/patients/{patient.id}/texts", stop="0", note="")
    page = signed_in.get(refused.headers["Location"]).text
    assert "Say how the patient asked to get texts again" in page
    assert ">No SMS</span>" in page
    _post(signed_in, f"/staff/patients/{patient.id}/texts", stop="0", note="asked at the desk")
    db.session.expire_all()
    assert db.session.get(Patient, patient.id).sms_opt_out is False


def test_tier_changes_need_a_reason_and_are_audited(signed_in: FlaskClient) -> None:
    patient = f.patient()
    db.session.commit()
    _post(signed_in, f"/staff/patients/{patient.id}/tier", tier="deposit", reason="")
    db.session.expire_all()
    assert db.session.get(Patient, patient.id).deposit_required is False
    _post(
        signed_in, f"/staff/patients/{patient.id}/tier", tier="prepayment", reason="third no-show"
    )
    db.session.expire_all()
    changed = db.session.get(Patient, patient.id)
    assert (changed.deposit_required, changed.prepayment_required) == (False, True)
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "patient.tier_changed")
    )
    assert event.before == {"tier": "none", "effective": "none"}
    assert event.after == {
        "tier": "prepayment",
        "effective": "prepayment",
        "reason": "third no-show",
    }


def test_patient_page_shows_everything_with_actions_in_place(signed_in: FlaskClient) -> None:
    patient = f.patient(name="Full Record", sms_opt_out=True)
    slot = f.slot()
    f.appointment(slot=slot, patient=patient)
    f.waitlist_entry(patient=patient, slot=slot, status=WaitlistStatus.PAUSED)
    ops.flag(FlagKind.NO_SHOW, patient=patient)
    ledger.open_charge(
        patient_id=patient.id,
        kind=ChargeKind.DEPOSIT,
        amount_cents=5000,
        key="deposit:test:1",
        description="Deposit",
        actor=SYSTEM,
    )
    db.session.commit()
    html = signed_in.get(f"/staff/patients/{patient.id}").text
    for text in (
        "Contact",
        "How we can reach",
        "Texts",
        "Flags",
        "Review",
        "Payment before booking",
        "Waitlist entries",
        "Resume",
        "Appointments",
        "Offers",
        "Charges",
        "$50.00",
        "Messages",
        "Edit details",
        "Add to the waitlist",
    ):
        assert text in html, text
    assert " EST" in html or " EDT" in html  # times with their zone


def test_unknown_patient_is_404(signed_in: FlaskClient) -> None:
    assert signed_in.get("/staff/patients/999999/edit").status_code == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/staff/patients/new", "name"),
        ("/staff/closures", "reason"),
        ("/staff/settings/staff/invite", "name"),
    ],
)
def test_a_nul_byte_in_a_form_is_refused_not_a_500(
    signed_in: FlaskClient, path: str, field: str
) -> None:
    f.location()
    db.session.commit()
    data = {"name": "Ana", "phone": "+13105550142", "first_day": "2031-05-01", "location": "1"}
    response = _post(signed_in, path, **(data | {field: "bad\x00value"}))
    assert response.status_code == 400


def test_the_tier_shown_is_the_no_show_tier_raised_by_staff(signed_in: FlaskClient) -> None:
    from portal.models.enums import AppointmentStatus

    patient = f.patient(name="Two Noshows")
    for days in (20, 40):
        f.appointment(
            slot=f.slot(start_at=now_utc() - timedelta(days=days)),
            patient=patient,
            status=AppointmentStatus.NO_SHOW,
            no_show_at=now_utc() - timedelta(days=days),
        )
    db.session.commit()
    page = signed_in.get(f"/staff/patients/{patient.id}").text
    assert "<strong>A deposit before booking</strong>" in page  # earned by two no-shows
    _post(signed_in, f"/staff/patients/{patient.id}/tier", tier="prepayment", reason="rude")
    page = signed_in.get(f"/staff/patients/{patient.id}").text
    assert "<strong>Prepayment before booking</strong>" in page
