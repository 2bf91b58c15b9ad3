"""Practitioner sync and the paged slot and appointment lists for the practice's system."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import AuditEvent, Practitioner
from portal.models.enums import AppointmentStatus, SlotStatus
from tests import factories as f
from tests.api.conftest import ApiClient


def _patch(api: ApiClient, path: str, body: dict) -> object:
    return api.client.patch(path, json=body, headers={"Authorization": f"Bearer {api.token}"})


def test_practitioners_are_created_and_patched(api: ApiClient) -> None:
    location, other = f.location(), f.location()
    botox, laser = f.service(), f.service()
    db.session.commit()
    created = api.post(
        "/api/v1/practitioners",
        json={"name": " Dr.  Rivera ", "location_id": location.id, "service_ids": [botox.id]},
    )
    assert created.status_code == 201
    body = created.json
    assert body | {"id": 0} == {
        "id": 0,
        "name": "Dr. Rivera",
        "location_id": location.id,
        "active": True,
        "service_ids": [botox.id],
    }
    changed = _patch(
        api,
        f"/api/v1/practitioners/{body['id']}",
        {"location_id": other.id, "service_ids": [laser.id, botox.id], "active": False},
    )
    assert changed.status_code == 200
    assert changed.json["location_id"] == other.id and sorted(
        changed.json["service_ids"]
    ) == sorted([laser.id, botox.id])
    assert changed.json["active"] is False and changed.json["name"] == "Dr. Rivera"
    kept = _patch(api, f"/api/v1/practitioners/{body['id']}", {"name": None})
    assert kept.status_code == 200 and kept.json["name"] == "Dr. Rivera"
    listed = api.get(f"/api/v1/practitioners?location_id={other.id}").json
    assert [p["id"] for p in listed] == [body["id"]]
    actions = [e.action for e in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[-2:] == ["practitioner.created", "practitioner.updated"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "X", "location_id": 999999}, 422, "unknown_location"),
        ({"name": "X", "location_id": 1, "service_ids": [999999]}, 422, "unknown_service"),
        ({"name": "", "location_id": 1}, 422, "validation_error"),
        ({"name": "X", "location_id": 1, "colour": "red"}, 422, "validation_error"),
    ],
)
def test_bad_practitioner_bodies_get_stable_codes(
    api: ApiClient, body: dict, status: int, code: str
) -> None:
    f.location()
    db.session.commit()
    response = api.post("/api/v1/practitioners", json=body)
    assert (response.status_code, response.json["error"]["code"]) == (status, code)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Practitioner)) == 0


def test_patching_an_unknown_practitioner_is_404(api: ApiClient) -> None:
    response = _patch(api, "/api/v1/practitioners/999999", {"active": False})
    assert response.status_code == 404


def test_slots_are_listed_by_range_status_practitioner_and_location_with_paging(
    api: ApiClient,
) -> None:
    start = (now_utc() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    doctor, other = f.practitioner(), f.practitioner()
    slots = [f.slot(practitioner=doctor, start_at=start + timedelta(hours=h)) for h in range(5)]
    booked = f.slot(practitioner=other, start_at=start, status=SlotStatus.BOOKED)
    f.appointment(slot=booked)
    db.session.commit()
    page = api.get(f"/api/v1/slots?practitioner_id={doctor.id}&per_page=2&page=2").json
    assert (page["total"], page["page"], page["per_page"]) == (5, 2, 2)
    assert [s["id"] for s in page["items"]] == [slots[2].id, slots[3].id]
    frm = (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    to = (start + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    ranged = api.get("/api/v1/slots", query_string={"from": frm, "to": to}).json
    assert [s["id"] for s in ranged["items"]] == [slots[1].id, slots[2].id]
    only_booked = api.get(f"/api/v1/slots?status=booked&location_id={other.location_id}").json
    assert [s["id"] for s in only_booked["items"]] == [booked.id]
    assert only_booked["items"][0]["appointment_id"] is not None


def test_appointments_are_listed_by_patient_slot_status_and_range(api: ApiClient) -> None:
    start = (now_utc() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    patient = f.patient()
    first = f.appointment(slot=f.slot(start_at=start), patient=patient)
    second = f.appointment(
        slot=f.slot(start_at=start + timedelta(days=1)),
        patient=patient,
        status=AppointmentStatus.CANCELLED,
    )
    f.appointment(slot=f.slot(start_at=start))
    db.session.commit()
    mine = api.get(f"/api/v1/appointments?patient_id={patient.id}").json
    assert [a["id"] for a in mine["items"]] == [first.id, second.id] and mine["total"] == 2
    cancelled = api.get(f"/api/v1/appointments?patient_id={patient.id}&status=cancelled").json
    assert [a["id"] for a in cancelled["items"]] == [second.id]
    by_slot = api.get(f"/api/v1/appointments?slot_id={first.slot_id}").json
    assert [a["id"] for a in by_slot["items"]] == [first.id]
    frm = (start + timedelta(hours=12)).isoformat()
    later = api.get("/api/v1/appointments", query_string={"from": frm}).json
    assert [a["id"] for a in later["items"]] == [second.id]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("status=lost", "validation_error"),
        ("page=0", "validation_error"),
        ("per_page=500", "validation_error"),
        ("practitioner_id=abc", "validation_error"),
        ("from=yesterday", "validation_error"),
        ("from=2031-01-02T00:00:00Z&to=2031-01-01T00:00:00Z", "invalid_range"),
    ],
)
def test_bad_list_queries_get_422_with_a_code(api: ApiClient, query: str, code: str) -> None:
    response = api.get(f"/api/v1/slots?{query}")
    assert response.status_code == 422 and response.json["error"]["code"] == code


def test_lists_need_a_token(client) -> None:
    assert client.get("/api/v1/slots").status_code == 401
    assert client.get("/api/v1/appointments").status_code == 401
