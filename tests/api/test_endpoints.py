"""The JSON API endpoints: shapes, status codes and error codes (CONTRACT.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from portal.db import db, now_utc
from portal.models import ApiToken, AuditEvent, Patient, Slot, WaitlistEntry
from portal.models.enums import ActorType
from portal.web.api import schemas
from tests import factories as f
from tests.api.conftest import ApiClient


def assert_shape(payload: dict[str, Any], model: type[BaseModel]) -> None:
    """The payload has exactly the documented fields and validates against them."""
    assert set(payload) == set(model.model_fields)
    model.model_validate(payload)


def _count(model: Any) -> int:
    return db.session.scalar(sa.select(sa.func.count(model.id)))


def _future(hours: int = 24) -> datetime:
    return (now_utc() + timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)


# Lists


def test_reference_data_lists(api: ApiClient) -> None:
    east = f.location(timezone="America/New_York")
    west = f.location(timezone="America/Los_Angeles")
    dr_east, dr_west = f.practitioner(location=east), f.practitioner(location=west)
    botox = f.service(category="injectables", price_cents=45000)

    locations = api.get("/api/v1/locations").json
    assert [loc["id"] for loc in locations] == [east.id, west.id]
    assert locations[1]["timezone"] == "America/Los_Angeles"
    assert_shape(locations[0], schemas.LocationOut)

    practitioners = api.get("/api/v1/practitioners").json
    assert {p["id"] for p in practitioners} == {dr_east.id, dr_west.id}
    assert_shape(practitioners[0], schemas.PractitionerOut)
    only_west = api.get(f"/api/v1/practitioners?location_id={west.id}").json
    assert [p["id"] for p in only_west] == [dr_west.id]

    services = api.get("/api/v1/services").json
    assert services == [
        {
            "id": botox.id,
            "name": botox.name,
            "category": "injectables",
            "duration_minutes": 60,
            "price_cents": 45000,
            "active": True,
        }
    ]


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5", "99999999999", ""])
def test_malformed_location_filter_is_a_validation_error(api: ApiClient, value: str) -> None:
    resp = api.get(f"/api/v1/practitioners?location_id={value}")
    assert resp.status_code == 422
    assert resp.json["error"]["code"] == "validation_error"
    assert resp.json["error"]["fields"][0]["loc"] == ["query", "location_id"]


# Patients


def test_create_patient(api: ApiClient) -> None:
    f.location(timezone="America/Chicago")
    resp = api.post(
        "/api/v1/patients",
        json={"name": "Ana Doe", "phone": "(310) 555-0142", "email": "ana@example.test"},
    )
    assert resp.status_code == 201
    body = resp.json
    assert body["phone_e164"] == "+13105550142"
    assert body["timezone"] == "America/Los_Angeles"
    assert body["timezone_source"] == "phone"
    assert_shape(body, schemas.PatientOut)
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.entity_type == "patient")
    ).one()
    token_id = db.session.scalars(sa.select(ApiToken.id)).one()
    assert (event.action, event.actor_type, event.actor_id) == (
        "patient.created",
        ActorType.API,
        str(token_id),
    )


def test_create_patient_with_explicit_zone(api: ApiClient) -> None:
    resp = api.post(
        "/api/v1/patients",
        json={"name": "Ana", "phone": "+1 212 555 0123", "timezone": "Europe/Paris"},
    )
    assert resp.status_code == 201
    assert (resp.json["timezone"], resp.json["timezone_source"]) == ("Europe/Paris", "explicit")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Ana", "phone": "12345"}, 422, "invalid_phone"),
        ({"name": "Ana", "phone": "+1 555 555 5555"}, 422, "invalid_phone"),
        (
            {"name": "Ana", "phone": "+12125550123", "timezone": "Mars/Base"},
            422,
            "invalid_timezone",
        ),
        ({"name": "Ana", "phone": "+12125550123", "email": "nope"}, 422, "invalid_email"),
        (
            {"name": "Ana", "phone": "+12125550123", "home_location_id": 999},
            422,
            "unknown_location",
        ),
    ],
)
def test_create_patient_refusals(
    api: ApiClient, body: dict[str, Any], status: int, code: str
) -> None:
    resp = api.post("/api/v1/patients", json=body)
    assert resp.status_code == status
    assert resp.json["error"]["code"] == code
    assert resp.json["error"]["message"]
    assert _count(Patient) == 0


def test_missing_and_extra_fields_are_listed(api: ApiClient) -> None:
    resp = api.post("/api/v1/patients", json={"phone": "+12125550123", "is_admin": True})
    assert resp.status_code == 422
    error = resp.json["error"]
    assert error["code"] == "validation_error"
    by_loc = {tuple(x["loc"]): x for x in error["fields"]}
    assert by_loc[("name",)]["type"] == "missing"
    assert by_loc[("is_admin",)]["type"] == "extra_forbidden"
    assert all(x["message"] for x in error["fields"])


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b'{"name": "Ana", "phone": "+12125550123"}', "text/plain"),
        (b"name=Ana&phone=%2B12125550123", "application/x-www-form-urlencoded"),
        (b'{"name": NaN}', "application/json"),
    ],
)
def test_bad_json_is_a_400(api: ApiClient, data: bytes, content_type: str) -> None:
    resp = api.post("/api/v1/patients", data=data, content_type=content_type)
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_json"


# Waitlist


def _join_body(patient: Patient, service_id: int, **extra: Any) -> dict[str, Any]:
    return {"patient_id": patient.id, "service_id": service_id} | extra


def test_join_waitlist_twice_returns_the_same_entry(api: ApiClient) -> None:
    location = f.location()
    patient, service = f.patient(home_location_id=location.id), f.service()
    first = api.post(
        "/api/v1/waitlist",
        json=_join_body(
            patient,
            service.id,
            windows=[{"weekday": 0, "start": "09:00", "end": "12:00"}],
            earliest="2030-01-01",
            latest="2030-03-01",
            preferred_time="10:30",
        ),
    )
    assert first.status_code == 201
    assert first.json["location_id"] == location.id  # the home location by default
    assert first.json["preferred_time"] == "10:30"
    assert first.json["earliest"] == "2030-01-01"
    assert_shape(first.json, schemas.WaitlistEntryOut)

    second = api.post(
        "/api/v1/waitlist",
        json=_join_body(patient, service.id, location_id=location.id, short_notice_ok=True),
    )
    assert second.status_code == 200
    assert second.json["id"] == first.json["id"]
    assert second.json["short_notice_ok"] is True
    assert second.json["windows"] == []
    assert _count(WaitlistEntry) == 1


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        ({"service_id": 999}, 422, "unknown_service"),
        ({"patient_id": 999}, 422, "unknown_patient"),
        ({"location_id": 999}, 422, "unknown_location"),
        ({"preferred_practitioner_id": 999}, 422, "unknown_practitioner"),
        ({"earliest": "2030-02-01", "latest": "2030-01-01"}, 422, "invalid_date_range"),
        ({"windows": [{"weekday": 7, "start": "09:00", "end": "10:00"}]}, 422, "validation_error"),
        ({"windows": [{"weekday": 1, "start": "11:00", "end": "10:00"}]}, 422, "invalid_windows"),
        ({"earliest": "01/02/2030"}, 422, "validation_error"),
        ({"preferred_time": "10am"}, 422, "validation_error"),
        ({"short_notice_ok": "yes"}, 422, "validation_error"),
    ],
)
def test_join_waitlist_refusals(
    api: ApiClient, extra: dict[str, Any], status: int, code: str
) -> None:
    location = f.location()
    patient, service = f.patient(), f.service()
    body = _join_body(patient, service.id, location_id=location.id) | extra
    resp = api.post("/api/v1/waitlist", json=body)
    assert (resp.status_code, resp.json["error"]["code"]) == (status, code)
    assert _count(WaitlistEntry) == 0


def test_join_waitlist_needs_a_location_when_it_is_ambiguous(api: ApiClient) -> None:
    f.location()
    f.location()
    resp = api.post("/api/v1/waitlist", json=_join_body(f.patient(), f.service().id))
    assert (resp.status_code, resp.json["error"]["code"]) == (422, "location_required")


# Slots


def test_create_and_get_a_slot(api: ApiClient) -> None:
    practitioner, service = f.practitioner(), f.service(duration_minutes=30)
    start = _future()
    local = start.astimezone(ZoneInfo("America/New_York")).isoformat()
    resp = api.post(
        "/api/v1/slots",
        json={"practitioner_id": practitioner.id, "service_id": service.id, "start_at": local},
    )
    assert resp.status_code == 201
    body = resp.json
    assert body["start_at"] == start.isoformat()
    assert body["start_at"].endswith("+00:00")
    assert datetime.fromisoformat(body["end_at"]) - start == timedelta(minutes=30)
    assert body["status"] == "open"
    assert body["location_id"] == practitioner.location_id
    assert_shape(body, schemas.SlotOut)
    assert resp.headers["Location"].endswith(f"/api/v1/slots/{body['id']}")

    again = api.get(f"/api/v1/slots/{body['id']}")
    assert again.status_code == 200
    assert again.json == body


def test_offsets_are_honoured(api: ApiClient) -> None:
    practitioner, service = f.practitioner(), f.service()
    year = now_utc().year + 1
    resp = api.post(
        "/api/v1/slots",
        json={
            "practitioner_id": practitioner.id,
            "service_id": service.id,
            "start_at": f"{year}-03-02T10:00:00-05:00",
            "end_at": f"{year}-03-02T15:45:00Z",
        },
    )
    assert resp.status_code == 201
    slot = db.session.get(Slot, resp.json["id"])
    assert slot.start_at == datetime(year, 3, 2, 15, 0, tzinfo=UTC)
    assert slot.end_at == datetime(year, 3, 2, 15, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    "start_at", ["2031-03-02T10:00:00", "2031-03-02", "tomorrow", 1900000000, None]
)
def test_slot_times_need_an_offset(api: ApiClient, start_at: Any) -> None:
    resp = api.post(
        "/api/v1/slots",
        json={
            "practitioner_id": f.practitioner().id,
            "service_id": f.service().id,
            "start_at": start_at,
        },
    )
    assert resp.status_code == 422
    error = resp.json["error"]
    assert error["code"] == "validation_error"
    assert error["fields"][0]["loc"] == ["start_at"]
    assert error["fields"][0]["type"] == "invalid_datetime"


def test_overlapping_slot_is_a_409(api: ApiClient) -> None:
    practitioner, service = f.practitioner(), f.service(duration_minutes=60)
    existing = f.slot(practitioner=practitioner, service=service, start_at=_future())
    resp = api.post(
        "/api/v1/slots",
        json={
            "practitioner_id": practitioner.id,
            "service_id": service.id,
            "start_at": (_future() + timedelta(minutes=30)).isoformat(),
        },
    )
    assert resp.status_code == 409
    assert resp.json["error"] == {
        "code": "slot_overlap",
        "message": resp.json["error"]["message"],
        "slot_id": existing.id,
    }
    assert _count(Slot) == 1


@pytest.mark.parametrize(
    ("field", "code"),
    [("practitioner_id", "unknown_practitioner"), ("service_id", "unknown_service")],
)
def test_slot_with_unknown_references(api: ApiClient, field: str, code: str) -> None:
    body = {"practitioner_id": f.practitioner().id, "service_id": f.service().id}
    body |= {field: 424242, "start_at": _future().isoformat()}
    resp = api.post("/api/v1/slots", json=body)
    assert (resp.status_code, resp.json["error"]["code"]) == (422, code)


@pytest.mark.parametrize("slot_id", ["999", "99999999999999"])
def test_unknown_slot_is_a_404(api: ApiClient, slot_id: str) -> None:
    resp = api.get(f"/api/v1/slots/{slot_id}")
    assert resp.status_code == 404
    assert resp.json["error"]["code"] == "not_found"
