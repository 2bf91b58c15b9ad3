"""Slots on DST change days: a skipped wall-clock time is refused with a clear message; the
repeated hour is told apart by its offset."""

from __future__ import annotations

import pytest

from portal.db import db
from portal.models import Slot
from portal.services.presentation import when
from tests import factories as f
from tests.api.conftest import ApiClient


@pytest.mark.parametrize(
    ("tz", "start_at", "suggested"),
    [
        ("America/New_York", "2027-03-14T02:30:00-05:00", "03:30 EDT"),
        ("America/Los_Angeles", "2027-03-14T02:30:00-08:00", "03:30 PDT"),
        ("Europe/London", "2027-03-28T01:30:00+00:00", None),  # UTC: taken as it is
        ("Australia/Lord_Howe", "2026-10-04T02:15:00+10:30", "02:45 +11"),
    ],
)
def test_a_skipped_wall_time_is_refused_with_what_it_would_be(
    api: ApiClient, tz: str, start_at: str, suggested: str | None
) -> None:
    practitioner = f.practitioner(location=f.location(timezone=tz))
    service = f.service()
    db.session.commit()

    resp = api.post(
        "/api/v1/slots",
        json={"practitioner_id": practitioner.id, "service_id": service.id, "start_at": start_at},
    )

    if suggested is None:
        assert resp.status_code == 201, resp.json
        return
    assert resp.status_code == 422
    error = resp.json["error"]
    assert error["code"] == "nonexistent_local_time"
    assert "does not exist" in error["message"] and f"Did you mean {suggested}?" in error["message"]
    assert db.session.query(Slot).count() == 0


def test_the_clinics_own_offset_and_the_repeated_hour_are_accepted(api: ApiClient) -> None:
    practitioner = f.practitioner(location=f.location(timezone="America/New_York"))
    service = f.service(duration_minutes=30)
    db.session.commit()
    made = []
    for start_at in (
        "2027-03-14T03:30:00-04:00",  # just after the gap, in EDT: fine
        "2027-11-07T01:30:00-04:00",  # the first 01:30 (EDT)
        "2027-11-07T01:30:00-05:00",  # the second 01:30 (EST), an hour later
    ):
        resp = api.post(
            "/api/v1/slots",
            json={
                "practitioner_id": practitioner.id,
                "service_id": service.id,
                "start_at": start_at,
            },
        )
        assert resp.status_code == 201, resp.json
        made.append(db.session.get(Slot, resp.json["id"]))

    shown = [when(s.start_at, "America/New_York") for s in made]
    assert shown == [
        "Sun, Mar 14 · 3:30 AM EDT",
        "Sun, Nov 7 · 1:30 AM EDT",
        "Sun, Nov 7 · 1:30 AM EST",
    ]
    assert [s.start_at.isoformat() for s in made[1:]] == [
        "2027-11-07T05:30:00+00:00",
        "2027-11-07T06:30:00+00:00",
    ]
