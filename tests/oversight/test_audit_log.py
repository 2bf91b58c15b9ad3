"""The audit log: append-only in the database, filtered, keyset-paged, scoped, exported."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db
from portal.models import AuditEvent, StaffUser
from portal.models.enums import ActorType
from portal.services import audit_log
from portal.services.audit import SYSTEM, Action, Actor, record
from tests import factories as f
from tests.staff.conftest import PASSWORD, post_login

pytestmark = pytest.mark.usefixtures("app")


def _event(actor: Actor, action: Action, entity: object, at: datetime, **kw: object) -> AuditEvent:
    event = record(actor, action, entity, **kw)
    event.occurred_at = at
    db.session.flush()
    return event


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET action = 'patient.created'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
    ],
)
def test_the_database_refuses_to_change_or_remove_audit_events(statement: str) -> None:
    patient = f.patient()
    record(SYSTEM, Action.PATIENT_UPDATED, patient)
    db.session.commit()
    with db.engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
        conn.exec_driver_sql(statement)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 1


def _admin() -> StaffUser:
    from portal.models.enums import StaffRole

    return f.staff_user(password=PASSWORD, role=StaffRole.ADMIN, name="Ada Admin")


def _sign_in(client: FlaskClient, user: StaffUser) -> FlaskClient:
    db.session.commit()
    assert post_login(client, user.email, PASSWORD).status_code == 302
    return client


def test_keyset_pages_walk_every_event_once_newest_first(client: FlaskClient) -> None:
    admin = _admin()
    patient = f.patient()
    base = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    made = [
        _event(SYSTEM, Action.PATIENT_UPDATED, patient, base + timedelta(minutes=i // 2))
        for i in range(130)  # pairs share a timestamp: the id breaks the tie
    ]
    _sign_in(client, admin)
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        found = audit_log.page(
            audit_log.AuditFilter(entity_type="patient"), is_admin=True, after=cursor
        )
        seen += [e.id for e in found.events]
        cursor = found.next_cursor
        if cursor is None:
            break
    expected = [e.id for e in sorted(made, key=lambda e: (e.occurred_at, e.id), reverse=True)]
    assert seen == expected
    # The page follows the same cursor.
    first = client.get("/staff/audit?entity=patient")
    assert first.status_code == 200
    assert "Older" in first.text
    cursor = audit_log.page(audit_log.AuditFilter(entity_type="patient"), is_admin=True).next_cursor
    second = client.get(f"/staff/audit?entity=patient&after={cursor}")
    assert second.status_code == 200
    assert "Newest" in second.text


def test_filters_by_entity_actor_action_and_local_dates(client: FlaskClient) -> None:
    admin = _admin()
    location = f.location(timezone="America/Los_Angeles")
    practitioner = f.practitioner(location=location)
    slot = f.slot(practitioner=practitioner)
    patient = f.patient(name="Quinn Quill")
    # 23:30 on 2 Nov in Los Angeles is 07:30 UTC on 3 Nov: it belongs to 2 Nov locally.
    late = datetime(2026, 11, 3, 7, 30, tzinfo=UTC)
    _event(Actor.staff(admin), Action.SLOT_OPENED, slot, late, after={"status": "open"})
    _event(
        Actor.patient(patient.id), Action.PATIENT_SMS_OPT_OUT, patient, late + timedelta(hours=1)
    )
    _event(Actor.webhook("twilio"), Action.PATIENT_UPDATED, patient, late + timedelta(days=2))
    _sign_in(client, admin)
    zone = "America/Los_Angeles"
    assert audit_log.clinic_zone() == zone

    def actions(**params: str) -> list[str]:
        wanted, problems = audit_log.parse_filter(params, zone)
        assert problems == []
        return [e.action for e in audit_log.page(wanted, is_admin=True).events]

    assert actions(**{"from": "2026-11-02", "to": "2026-11-02"}) == ["slot.opened"]
    assert actions(**{"from": "2026-11-03", "to": "2026-11-03"}) == ["patient.sms_opt_out"]
    assert actions(entity="patient", entity_id=str(patient.id)) == [
        "patient.updated",
        "patient.sms_opt_out",
    ]
    assert actions(actor="webhook") == ["patient.updated"]
    assert actions(actor="staff", actor_id=str(admin.id)) == ["staff.login", "slot.opened"]
    assert actions(action="patient.sms_opt_out") == ["patient.sms_opt_out"]

    page = client.get(f"/staff/audit?entity=slot&entity_id={slot.id}")
    assert page.status_code == 200
    assert "Slot opened" in page.text
    assert "Ada Admin" in page.text
    assert "status</span>:" in page.text  # before → after
    assert "Quinn Quill" not in page.text
    whole = client.get("/staff/audit")
    assert "Quinn Quill" in whole.text  # the patient as actor, by name
    assert "Webhook (twilio)" in whole.text


@pytest.mark.parametrize(
    "query",
    [
        "entity=nope",
        "entity_id=abc",
        "entity_id=99999999999",
        "actor=robot",
        "action=free.text",
        "from=2026-13-45",
        "from=9999-12-31",
        "to=0001-01-01",
        "after=garbage",
        "after=1_2_3",
        "after=99999999999999999_999999999999999999",
        "from=2026-12-01&to=2026-11-01",
        "actor_id=%00x",
    ],
)
def test_bad_filters_are_explained_never_a_500(client: FlaskClient, query: str) -> None:
    _sign_in(client, _admin())
    response = client.get(f"/staff/audit?{query}")
    assert response.status_code == 200


def test_staff_see_patient_events_only_admins_see_accounts_and_settings(
    client: FlaskClient,
) -> None:
    admin = _admin()
    staff = f.staff_user(password=PASSWORD, name="Sam Staff")
    patient = f.patient()
    at = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    _event(Actor.staff(admin), Action.STAFF_ROLE_CHANGED, staff, at)
    _event(Actor.staff(admin), Action.PATIENT_UPDATED, patient, at + timedelta(minutes=1))
    _sign_in(client, staff)
    page = client.get("/staff/audit")
    assert page.status_code == 200
    assert "Patient updated" in page.text
    assert "Staff role changed" not in page.text
    # Asking for them by name does not help.
    assert "Staff role changed" not in client.get("/staff/audit?entity=staff_user").text
    assert client.get("/staff/audit.csv").status_code == 403
    assert "Export CSV" not in page.text


def test_admins_export_the_filtered_log_as_csv_and_the_export_is_audited(
    client: FlaskClient,
) -> None:
    admin = _admin()
    patient = f.patient()
    at = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    for i in range(5):
        _event(SYSTEM, Action.PATIENT_UPDATED, patient, at + timedelta(minutes=i), after={"n": i})
    _event(SYSTEM, Action.STAFF_LOGIN, admin, at)
    _sign_in(client, admin)
    response = client.get("/staff/audit.csv?entity=patient")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == list(audit_log.CSV_HEADER)
    assert [r[6] for r in rows[1:]] == ["patient.updated"] * 5
    assert [r[10] for r in rows[1:]] == [f'{{"n": {i}}}' for i in reversed(range(5))]
    exported = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == Action.AUDIT_EXPORTED.value)
    ).all()
    assert len(exported) == 1
    assert exported[0].actor_type == ActorType.STAFF
    assert exported[0].actor_id == str(admin.id)
    assert exported[0].after == {"entity": "patient"}


def test_entity_pages_link_to_their_history(client: FlaskClient) -> None:
    admin = _admin()
    patient = f.patient()
    slot = f.slot()
    _sign_in(client, admin)
    assert (
        f"/staff/audit?entity=patient&amp;entity_id={patient.id}"
        in client.get(f"/staff/patients/{patient.id}").text
    )
    assert (
        f"/staff/audit?entity=slot&amp;entity_id={slot.id}"
        in client.get(f"/staff/slots/{slot.id}").text
    )
