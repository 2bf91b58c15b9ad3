"""Joining the waitlist: validation, and joining twice updates the one active entry."""

from __future__ import annotations

import threading
from datetime import date, time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.db import db
from portal.models import AuditEvent, Location, Patient, Service, WaitlistEntry
from portal.models.enums import WaitlistStatus
from portal.services.audit import SYSTEM
from portal.services.errors import DomainError
from portal.services.waitlist import default_location, join_waitlist, parse_windows
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")


def test_windows_are_normalised_sorted_and_deduplicated() -> None:
    raw = [
        {"weekday": 4, "start": "09:00", "end": "12:00"},
        {"weekday": 0, "start": "13:30", "end": "17:00"},
        {"weekday": 4, "start": "09:00", "end": "12:00"},
    ]
    assert parse_windows(raw) == [
        {"weekday": 0, "start": "13:30", "end": "17:00"},
        {"weekday": 4, "start": "09:00", "end": "12:00"},
    ]
    assert parse_windows(None) == []
    assert parse_windows([]) == []


@pytest.mark.parametrize(
    "raw",
    [
        "mondays",
        {"weekday": 0, "start": "09:00", "end": "10:00"},
        [None],
        [{"weekday": 7, "start": "09:00", "end": "10:00"}],
        [{"weekday": -1, "start": "09:00", "end": "10:00"}],
        [{"weekday": True, "start": "09:00", "end": "10:00"}],
        [{"weekday": "1", "start": "09:00", "end": "10:00"}],
        [{"weekday": 1, "start": "9:00", "end": "10:00"}],
        [{"weekday": 1, "start": "09:00", "end": "24:00"}],
        [{"weekday": 1, "start": "09:60", "end": "10:00"}],
        [{"weekday": 1, "start": "10:00", "end": "10:00"}],
        [{"weekday": 1, "start": "11:00", "end": "10:00"}],
        [{"weekday": 1, "start": "09:00"}],
        [{"weekday": 1, "start": "09:00", "end": "10:00", "tz": "UTC"}],
        [{"weekday": 1, "start": 900, "end": 1000}],
        [{"weekday": 1, "start": "09:00", "end": "10:00"}] * 51,
    ],
)
def test_malformed_windows_are_refused(raw: Any) -> None:
    with pytest.raises(DomainError) as info:
        parse_windows(raw)
    assert info.value.code == "invalid_windows"


def _setup() -> tuple[Patient, Service, Location]:
    location = f.location()
    return f.patient(home_location_id=location.id), f.service(), location


def test_first_join_creates_an_active_entry_and_audits_it() -> None:
    patient, service, location = _setup()
    entry, created = join_waitlist(
        patient=patient,
        service=service,
        location=location,
        windows=[{"weekday": 1, "start": "09:00", "end": "12:00"}],
        earliest=date(2030, 1, 1),
        latest=date(2030, 2, 1),
        preferred_time=time(10, 0),
        short_notice_ok=True,
        actor=SYSTEM,
    )
    assert created
    assert entry.status == WaitlistStatus.ACTIVE
    assert entry.windows == [{"weekday": 1, "start": "09:00", "end": "12:00"}]
    assert (entry.priority, entry.short_notice_ok) == (0, True)
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.entity_id == entry.id)).one()
    assert event.action == "waitlist.joined"


def test_joining_twice_updates_the_same_entry() -> None:
    patient, service, location = _setup()
    first, _ = join_waitlist(
        patient=patient, service=service, location=location, priority=5, actor=SYSTEM
    )
    first_created_at = first.created_at
    practitioner = f.practitioner(location=location)
    second, created = join_waitlist(
        patient=patient,
        service=service,
        location=location,
        preferred_practitioner=practitioner,
        short_notice_ok=True,
        actor=SYSTEM,
    )
    assert not created
    assert second.id == first.id
    assert second.preferred_practitioner_id == practitioner.id
    assert second.short_notice_ok
    assert second.priority == 5  # None keeps the staff-set priority
    assert second.created_at == first_created_at  # time waited is kept
    assert db.session.scalar(sa.select(sa.func.count(WaitlistEntry.id))) == 1
    actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["waitlist.joined", "waitlist.updated"]


def test_a_closed_entry_does_not_block_joining_again() -> None:
    patient, service, location = _setup()
    old = f.waitlist_entry(
        patient=patient,
        service_id=service.id,
        location_id=location.id,
        status=WaitlistStatus.BOOKED,
    )
    entry, created = join_waitlist(
        patient=patient, service=service, location=location, actor=SYSTEM
    )
    assert created
    assert entry.id != old.id


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"earliest": date(2030, 2, 1), "latest": date(2030, 1, 1)}, "invalid_date_range"),
        ({"windows": [{"weekday": 9, "start": "09:00", "end": "10:00"}]}, "invalid_windows"),
        ({"priority": 10_000}, "invalid_priority"),
        ({"latest": date(9999, 12, 31)}, "invalid_date_range"),
        ({"earliest": date(1, 1, 1)}, "invalid_date_range"),
    ],
)
def test_invalid_preferences_are_refused(kwargs: dict[str, Any], code: str) -> None:
    patient, service, location = _setup()
    with pytest.raises(DomainError) as info:
        join_waitlist(patient=patient, service=service, location=location, actor=SYSTEM, **kwargs)
    assert info.value.code == code
    assert db.session.scalar(sa.select(sa.func.count(WaitlistEntry.id))) == 0


def test_preferred_practitioner_must_work_at_the_location() -> None:
    patient, service, location = _setup()
    elsewhere = f.practitioner()
    with pytest.raises(DomainError) as info:
        join_waitlist(
            patient=patient,
            service=service,
            location=location,
            preferred_practitioner=elsewhere,
            actor=SYSTEM,
        )
    assert info.value.code == "invalid_practitioner"


def test_inactive_service_is_refused() -> None:
    patient, _, location = _setup()
    with pytest.raises(DomainError) as info:
        join_waitlist(
            patient=patient, service=f.service(active=False), location=location, actor=SYSTEM
        )
    assert info.value.code == "inactive_service"


def test_default_location_is_home_or_the_only_one() -> None:
    only = f.location()
    assert default_location(f.patient()) == only
    home = f.location()
    assert default_location(f.patient(home_location_id=home.id)) == home
    assert default_location(f.patient()) is None  # two locations, no home: ambiguous


def test_concurrent_joins_leave_one_active_entry(app: Flask) -> None:
    patient, service, location = _setup()
    ids = (patient.id, service.id, location.id)
    db.session.commit()
    barrier = threading.Barrier(4)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def join() -> None:
        with app.app_context():
            try:
                p, s, loc = (
                    db.session.get(Patient, ids[0]),
                    db.session.get(Service, ids[1]),
                    db.session.get(Location, ids[2]),
                )
                barrier.wait(timeout=10)
                entry, created = join_waitlist(patient=p, service=s, location=loc, actor=SYSTEM)
                db.session.commit()
                results.append((entry.id, created))
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=join) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len({entry_id for entry_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, False, True]
