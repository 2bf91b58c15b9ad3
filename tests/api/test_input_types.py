"""The API accepts exactly what its OpenAPI document describes (issue 7, defect 7).

Each case here is one the fuzzer (test_fuzz.py) can stumble on: a value the document
allows that the server refused, or one it forbids that the server took.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Patient, Slot, WaitlistEntry
from tests import factories as f
from tests.api.conftest import ApiClient


def _count(model: Any) -> int:
    return db.session.scalar(sa.select(sa.func.count(model.id)))


def _slot_body(start_at: Any) -> dict[str, Any]:
    return {
        "practitioner_id": f.practitioner().id,
        "service_id": f.service().id,
        "start_at": start_at,
    }


def _field_error(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 422, resp.json
    error = resp.json["error"]
    assert error["code"] == "validation_error"
    return error["fields"][0]


def _tomorrow_at(hour: int) -> str:
    day = (now_utc() + timedelta(days=1)).date()
    return f"{day.isoformat()}T{hour:02d}:00"


@pytest.mark.parametrize(
    "suffix",
    [
        ":00.123456Z",  # microseconds
        ":00.000Z",  # a fraction, even a zero one
        ":30Z",  # seconds
        "Z",  # no seconds at all (not RFC 3339)
        ":00z",  # lowercase zone designator
        ":00+24:00",  # an offset no clock has
    ],
)
def test_slot_times_are_whole_minutes(api: ApiClient, suffix: str) -> None:
    resp = api.post("/api/v1/slots", json=_slot_body(_tomorrow_at(10) + suffix))
    field = _field_error(resp)
    assert (field["loc"], field["type"]) == (["start_at"], "invalid_datetime")
    assert _count(Slot) == 0


@pytest.mark.parametrize(
    "start_at", ["8000-01-01T10:00:00Z", "1999-12-31T10:00:00Z", "0001-01-01T00:00:00+14:00"]
)
def test_slot_times_outside_the_years_2000_to_2099_are_invalid(
    api: ApiClient, start_at: str
) -> None:
    field = _field_error(api.post("/api/v1/slots", json=_slot_body(start_at)))
    assert field["loc"] == ["start_at"]


def test_a_slot_more_than_two_years_ahead_is_refused(api: ApiClient) -> None:
    far = (now_utc() + timedelta(days=800)).replace(minute=0, second=0, microsecond=0)
    resp = api.post("/api/v1/slots", json=_slot_body(far.isoformat()))
    assert (resp.status_code, resp.json["error"]["code"]) == (422, "slot_too_far_ahead")
    near = (now_utc() + timedelta(days=700)).replace(minute=0, second=0, microsecond=0)
    assert api.post("/api/v1/slots", json=_slot_body(near.isoformat())).status_code == 201


def test_whole_minute_slot_times_with_any_offset_are_taken(api: ApiClient) -> None:
    resp = api.post("/api/v1/slots", json=_slot_body(_tomorrow_at(10) + ":00+05:45"))
    assert resp.status_code == 201, resp.json
    assert resp.json["start_at"].endswith(":15:00+00:00")


def test_ids_written_as_integral_numbers_are_ids(api: ApiClient) -> None:
    """JSON Schema's ``integer`` includes 3.0; the server takes it as 3."""
    slot, patient = f.slot(), f.patient()
    resp = api.post(
        "/api/v1/appointments", json={"slot_id": float(slot.id), "patient_id": patient.id}
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["slot_id"] == slot.id


@pytest.mark.parametrize("value", [1.5, True, "1", 0, -1, 2**31, 1e300])
def test_ids_that_are_not_positive_int32_are_invalid(api: ApiClient, value: Any) -> None:
    resp = api.post("/api/v1/appointments", json={"slot_id": value, "patient_id": 1})
    assert _field_error(resp)["loc"] == ["slot_id"]
    assert _count(Appointment) == 0


@pytest.mark.parametrize(
    "name",
    [
        "Ana\x1fDoe",  # a control character
        "\u3000",  # blank once stripped (ideographic space)
        "\xa0\u2003",
        "   " + "A" * 118,  # 121 characters as sent
    ],
)
def test_names_the_document_forbids_are_refused(api: ApiClient, name: str) -> None:
    resp = api.post("/api/v1/patients", json={"name": name, "phone": "+13105550142"})
    assert _field_error(resp)["loc"] == ["name"]
    assert _count(Patient) == 0


def test_text_is_stripped(api: ApiClient) -> None:
    resp = api.post("/api/v1/patients", json={"name": "  Ana Doe\u3000", "phone": "+13105550142"})
    assert resp.status_code == 201
    assert resp.json["name"] == "Ana Doe"


@pytest.mark.parametrize(
    "extra",
    [
        {"windows": [{"weekday": 1, "start": "\uff10\uff19:00", "end": "10:00"}]},  # ０９:00
        {"windows": [{"weekday": 1, "start": "09:00\n", "end": "10:00"}]},
        {"preferred_time": "\u0661\u0660:00"},  # Arabic-Indic digits
        {"earliest": "1999-12-31"},
        {"latest": "2200-01-01"},
    ],
)
def test_times_of_day_and_dates_outside_the_document_are_invalid(
    api: ApiClient, extra: dict[str, Any]
) -> None:
    location = f.location()
    body = {"patient_id": f.patient().id, "service_id": f.service().id, "location_id": location.id}
    resp = api.post("/api/v1/waitlist", json=body | extra)
    _field_error(resp)
    assert _count(WaitlistEntry) == 0


def test_window_weekday_as_an_integral_number(api: ApiClient) -> None:
    location = f.location()
    body = {
        "patient_id": f.patient().id,
        "service_id": f.service().id,
        "location_id": location.id,
        "windows": [{"weekday": 2.0, "start": "09:00", "end": "10:00"}],
    }
    resp = api.post("/api/v1/waitlist", json=body)
    assert resp.status_code == 201, resp.json
    assert resp.json["windows"] == [{"weekday": 2, "start": "09:00", "end": "10:00"}]
