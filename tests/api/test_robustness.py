"""No request body, however malformed, gets a 5xx or writes anything (SPEC §8)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from portal.db import db
from portal.models import AuditEvent, Patient, Slot, WaitlistEntry
from tests import factories as f
from tests.api.conftest import ApiClient

ENDPOINTS = ["/api/v1/patients", "/api/v1/waitlist", "/api/v1/slots"]

RAW_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b"[1, 2, 3]",
    b'"a string"',
    b"42",
    b"true",
    b"{",
    b'{"a": }',
    b"\xff\xfe\x00garbage",
    b"NaN",
    b'{"patient_id": Infinity}',
    b"[" * 100_000,
    b'{"a": ' * 5_000 + b"1" + b"}" * 5_000,
    b'{"patient_id": ' + b"9" * 5_000 + b"}",
    b'{"patient_id": 1e999}',
]

#: Well-formed JSON with wrong contents; ``$P``/``$S``/``$R`` are replaced by real ids.
JSON_BODIES: list[Any] = [
    {},
    {"name": None, "phone": None},
    {"name": ["Ana"], "phone": {"nested": {"deeper": [1, {"x": None}]}}},
    {"name": "A" * 100_000, "phone": "+12125550123"},
    {"name": "Ana\x00", "phone": "+12125550123"},
    {"name": "Ana", "phone": "+1212555\x000123"},
    {"name": "Ana", "phone": "+12125550123", "timezone": "../../etc/passwd"},
    {"name": "Ana", "phone": "+12125550123", "timezone": "America\x00/New_York"},
    {"name": "Ana", "phone": "+12125550123", "home_location_id": 2**63},
    {"patient_id": "$P", "service_id": 2**31},
    {"patient_id": -1, "service_id": 0},
    {"patient_id": True, "service_id": 1.5},
    {"patient_id": "$P", "service_id": "$S", "location_id": "$L", "windows": "always"},
    {"patient_id": "$P", "service_id": "$S", "location_id": "$L", "windows": [[], {}, None]},
    {"patient_id": "$P", "service_id": "$S", "location_id": "$L", "earliest": "0000-01-01"},
    {"patient_id": "$P", "service_id": "$S", "location_id": "$L", "latest": "9999-12-31"},
    {"patient_id": "$P", "service_id": "$S", "location_id": "$L", "preferred_time": "25:99"},
    {"practitioner_id": "$R", "service_id": "$S", "start_at": "9999-12-31T23:59:59-14:00"},
    {"practitioner_id": "$R", "service_id": "$S", "start_at": "0001-01-01T00:00:00+14:00"},
    {"practitioner_id": "$R", "service_id": "$S", "start_at": "9999-12-31T23:30:00+00:00"},
    {"practitioner_id": "$R", "service_id": "$S", "start_at": "2031-01-01T10:00:00+25:00"},
    {"practitioner_id": "$R", "service_id": "$S", "start_at": "2031-02-30T10:00:00Z"},
    {"practitioner_id": "$R", "service_id": "$S", "start_at": "x" * 10_000},
    {
        "practitioner_id": "$R",
        "service_id": "$S",
        "start_at": "2031-01-01T10:00:00Z",
        "end_at": "2030-01-01T10:00:00Z",
    },
]


def _written() -> tuple[int, ...]:
    return tuple(
        db.session.scalar(sa.select(sa.func.count(m.id)))
        for m in (AuditEvent, Patient, WaitlistEntry, Slot)
    )


def _fill_ids(body: Any, ids: dict[str, int]) -> Any:
    if isinstance(body, dict):
        return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    return body


def _assert_clean_error(resp: Any) -> None:
    assert 400 <= resp.status_code < 500, resp.data[:300]
    error = resp.json["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in resp.get_data(as_text=True)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("raw", RAW_BODIES, ids=lambda b: repr(b[:20]))
def test_malformed_bytes_never_cause_a_5xx(api: ApiClient, endpoint: str, raw: bytes) -> None:
    before = _written()
    resp = api.post(endpoint, data=raw, content_type="application/json")
    _assert_clean_error(resp)
    assert _written() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("body", JSON_BODIES, ids=lambda b: json.dumps(b)[:40])
def test_wrong_json_never_causes_a_5xx(api: ApiClient, endpoint: str, body: Any) -> None:
    location = f.location()
    ids = {
        "$P": f.patient().id,
        "$S": f.service().id,
        "$L": location.id,
        "$R": f.practitioner(location=location).id,
    }
    db.session.commit()
    before = _written()
    resp = api.post(endpoint, json=_fill_ids(body, ids))
    _assert_clean_error(resp)
    assert _written() == before


def test_oversized_body_is_refused_cleanly(api: ApiClient) -> None:
    resp = api.post(
        "/api/v1/patients",
        data=b'{"name": "' + b"x" * 300_000 + b'"}',
        content_type="application/json",
    )
    assert resp.status_code == 413
    assert resp.json["error"]["code"] == "payload_too_large"
