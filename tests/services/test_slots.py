"""Creating slots: defaults, validation, no overlaps, and filling starts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.db import db, now_utc
from portal.models import AuditEvent, Practitioner, Service, Slot
from portal.models.enums import SlotStatus
from portal.services.audit import SYSTEM
from portal.services.errors import DomainError
from portal.services.slots import create_slot
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")


def _tomorrow(hour: int = 10) -> datetime:
    return (now_utc() + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def test_end_defaults_to_the_service_duration_and_slot_is_open() -> None:
    practitioner = f.practitioner()
    service = f.service(duration_minutes=45)
    start = _tomorrow().astimezone(ZoneInfo("America/New_York"))
    slot = create_slot(practitioner=practitioner, service=service, start_at=start, actor=SYSTEM)
    assert slot.start_at == start and slot.start_at.tzinfo == UTC
    assert slot.end_at - slot.start_at == timedelta(minutes=45)
    assert slot.status == SlotStatus.OPEN
    assert slot.opened_at is not None
    assert slot.location_id == practitioner.location_id
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "slot.created")
    ).one()
    assert event.entity_id == slot.id


def test_filling_starts_when_the_slot_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[int] = []
    monkeypatch.setattr(
        "portal.services.slots.on_slot_opened", lambda slot, actor, now: opened.append(slot.id)
    )
    slot = create_slot(
        practitioner=f.practitioner(), service=f.service(), start_at=_tomorrow(), actor=SYSTEM
    )
    assert opened == [slot.id]


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (datetime(2031, 1, 1, 10, 0), None, "invalid_datetime"),
        (datetime(2031, 1, 1, 10, 0, tzinfo=UTC), datetime(2031, 1, 1, 11, 0), "invalid_datetime"),
        (datetime(2020, 1, 1, 10, 0, tzinfo=UTC), None, "slot_in_past"),
        (
            datetime(2031, 1, 1, 10, 0, tzinfo=UTC),
            datetime(2031, 1, 1, 10, 0, tzinfo=UTC),
            "invalid_slot_range",
        ),
        (
            datetime(2031, 1, 1, 10, 0, tzinfo=UTC),
            datetime(2031, 1, 2, 10, 0, tzinfo=UTC),
            "invalid_slot_range",
        ),
        (datetime(9999, 12, 31, 23, 30, tzinfo=UTC), None, "invalid_slot_range"),
    ],
)
def test_bad_times_are_refused(start: datetime, end: datetime | None, code: str) -> None:
    with pytest.raises(DomainError) as info:
        create_slot(
            practitioner=f.practitioner(),
            service=f.service(),
            start_at=start,
            end_at=end,
            actor=SYSTEM,
        )
    assert info.value.code == code


def test_overlapping_slot_of_the_same_practitioner_is_refused() -> None:
    practitioner, service = f.practitioner(), f.service(duration_minutes=60)
    first = create_slot(
        practitioner=practitioner, service=service, start_at=_tomorrow(10), actor=SYSTEM
    )
    with pytest.raises(DomainError) as info:
        create_slot(
            practitioner=practitioner,
            service=service,
            start_at=_tomorrow(10) + timedelta(minutes=30),
            actor=SYSTEM,
        )
    assert (info.value.code, info.value.status) == ("slot_overlap", 409)
    assert info.value.details == {"slot_id": first.id}


def test_adjacent_closed_and_other_practitioners_slots_do_not_clash() -> None:
    practitioner, service = f.practitioner(), f.service(duration_minutes=60)
    f.slot(
        practitioner=practitioner, service=service, start_at=_tomorrow(12), status=SlotStatus.CLOSED
    )
    f.slot(practitioner=f.practitioner(), service=service, start_at=_tomorrow(14))
    for hour in (11, 12, 13, 14):  # back to back; over the closed one; over another's
        create_slot(
            practitioner=practitioner, service=service, start_at=_tomorrow(hour), actor=SYSTEM
        )
    assert db.session.scalar(sa.select(sa.func.count(Slot.id))) == 6


@pytest.mark.parametrize(
    ("practitioner_kw", "service_kw", "code"),
    [
        ({"active": False}, {}, "inactive_practitioner"),
        ({}, {"active": False}, "inactive_service"),
    ],
)
def test_inactive_practitioner_or_service_is_refused(
    practitioner_kw: dict[str, bool], service_kw: dict[str, bool], code: str
) -> None:
    with pytest.raises(DomainError) as info:
        create_slot(
            practitioner=f.practitioner(**practitioner_kw),
            service=f.service(**service_kw),
            start_at=_tomorrow(),
            actor=SYSTEM,
        )
    assert info.value.code == code


def test_concurrent_overlapping_creations_let_exactly_one_through(app: Flask) -> None:
    practitioner, service = f.practitioner(), f.service(duration_minutes=60)
    ids = (practitioner.id, service.id)
    db.session.commit()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create(minutes: int) -> None:
        with app.app_context():
            try:
                p, s = db.session.get(Practitioner, ids[0]), db.session.get(Service, ids[1])
                barrier.wait(timeout=10)
                start = _tomorrow(10) + timedelta(minutes=minutes)
                create_slot(practitioner=p, service=s, start_at=start, actor=SYSTEM)
                db.session.commit()
                outcomes.append("created")
            except DomainError as exc:
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=create, args=(m,)) for m in (0, 10, 20, 30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["created", "slot_overlap", "slot_overlap", "slot_overlap"]
