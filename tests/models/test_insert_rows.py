"""``insert_rows``: many rows in one short statement, typed as the columns are."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from portal.db import db, insert_rows, now_utc
from portal.models import AuditEvent, Notification
from portal.models.enums import ActorType, NotificationStatus, Purpose
from tests import factories as f

pytestmark = pytest.mark.usefixtures("app")


def _statements(run: Any) -> list[str]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    return seen


def test_rows_keep_their_enums_json_nulls_and_instants() -> None:
    at = now_utc() - timedelta(minutes=5)
    rows = [
        {
            "occurred_at": at + timedelta(seconds=n),
            "actor_type": ActorType.PATIENT if n % 2 else ActorType.SYSTEM,
            "actor_id": str(n) if n % 2 else None,
            "action": "offer.withdrawn",
            "entity_type": "offer",
            "entity_id": 1000 + n,
            "before": None,
            "after": {"reason": "slot_filled", "n": n, "text": 'it\'s "quoted"'},
        }
        for n in range(3)
    ]
    written = insert_rows(AuditEvent.__table__, rows, returning=("id", "entity_id"))
    assert sorted(r.entity_id for r in written) == [1000, 1001, 1002]
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.id.in_([r.id for r in written]))
        .order_by(AuditEvent.id)
    ).all()
    assert [e.entity_id for e in events] == [1000, 1001, 1002]  # written in the rows' order
    assert [e.actor_type for e in events] == [ActorType.SYSTEM, ActorType.PATIENT, ActorType.SYSTEM]
    assert [e.actor_id for e in events] == [None, "1", None]
    assert events[1].after == {"reason": "slot_filled", "n": 1, "text": 'it\'s "quoted"'}
    assert events[0].before is None  # SQL NULL, not JSON null
    assert db.session.scalar(
        sa.select(sa.func.count()).where(AuditEvent.id == events[0].id, AuditEvent.before.is_(None))
    )
    assert [e.occurred_at for e in events] == [r["occurred_at"] for r in rows]


def test_the_statement_is_the_same_for_two_rows_or_two_hundred() -> None:
    patient = f.patient()
    now = now_utc()

    def rows(n: int, tag: str) -> list[dict[str, Any]]:
        return [
            {
                "patient_id": patient.id,
                "purpose": Purpose.SLOT_FILLED,
                "status": NotificationStatus.PENDING,
                "dedupe_key": f"test:{tag}:{i}",
                "context": {},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n)
        ]

    small = _statements(lambda: insert_rows(Notification.__table__, rows(2, "a")))
    large = _statements(lambda: insert_rows(Notification.__table__, rows(200, "b")))
    assert len(small) == len(large) == 1
    assert small == large


def test_duplicates_of_a_unique_key_are_skipped_when_asked() -> None:
    patient = f.patient()
    now = now_utc()
    row = {
        "patient_id": patient.id,
        "purpose": Purpose.SLOT_FILLED,
        "status": NotificationStatus.PENDING,
        "dedupe_key": "test:once",
        "context": {},
        "created_at": now,
        "updated_at": now,
    }
    first = insert_rows(Notification.__table__, [row], skip_conflicts_on=["dedupe_key"])
    again = insert_rows(
        Notification.__table__,
        [row, {**row, "dedupe_key": "test:twice"}],
        returning=("id", "dedupe_key"),
        skip_conflicts_on=["dedupe_key"],
    )
    assert len(first) == 1
    assert [r.dedupe_key for r in again] == ["test:twice"]
    assert insert_rows(Notification.__table__, []) == []


def test_a_string_too_long_for_its_column_is_refused_not_cut() -> None:
    # Two keys alike in their first 120 characters must not become one (and a message lost).
    patient = f.patient()
    now = now_utc()
    rows = [
        {
            "patient_id": patient.id,
            "purpose": Purpose.SLOT_FILLED,
            "status": NotificationStatus.PENDING,
            "dedupe_key": "k" * 120 + suffix,
            "context": {},
            "created_at": now,
            "updated_at": now,
        }
        for suffix in ("-a", "-b")
    ]
    with pytest.raises(sa.exc.DBAPIError, match="too long"):
        insert_rows(Notification.__table__, rows, skip_conflicts_on=["dedupe_key"])
    db.session.rollback()
