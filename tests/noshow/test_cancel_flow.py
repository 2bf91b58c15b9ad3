"""The patient's cancel flow: quote, confirm, the ledger, the slot, the waitlist."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.clock import ManualClock, use_clock
from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Charge, Notification, PatientFlag, Slot
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    ChargeStatus,
    FlagKind,
    Purpose,
    SlotStatus,
    WaitlistStatus,
)
from portal.services import ledger
from portal.services.audit import Actor
from portal.services.cancellation import (
    cancel_for_patient,
    cancellation_window,
    recent_cancellations,
)
from portal.services.links import appointment_token
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.races import assert_consistent, race

pytestmark = pytest.mark.usefixtures("app")


def _booked(hours_ahead: float, *, source=AppointmentSource.STAFF, booked_ago=timedelta(days=3)):
    start = (now_utc() + timedelta(hours=hours_ahead)).replace(second=0, microsecond=0)
    service = f.service(price_cents=40000, category="injectables")
    slot = f.slot(start_at=start, service=service)
    patient = f.patient()
    entry = f.waitlist_entry(patient=patient, slot=slot, status=WaitlistStatus.BOOKED)
    appt = f.appointment(
        slot=slot,
        patient=patient,
        source=source,
        status=AppointmentStatus.CONFIRMED,
        booked_at=now_utc() - booked_ago,
        waitlist_entry_id=entry.id,
    )
    db.session.commit()
    return appt


def _url(appt: Appointment) -> str:
    return f"/a/{appointment_token(appt.id, appt.patient_id, appt.slot.start_at)}"


def _quote(client: FlaskClient, appt: Appointment) -> tuple[str, str]:
    url = _url(appt)
    token = csrf_token_from(client.get(url).text)
    page = client.post(f"{url}/cancel", data={"csrf_token": token})
    assert page.status_code == 200
    return page.text, csrf_token_from(page.text)


def _fee_field(html: str) -> str:
    marker = 'name="quoted_fee_cents" value="'
    return html[html.index(marker) + len(marker) :].split('"', 1)[0]


def test_quote_then_confirm_cancels_charges_once_and_reopens_the_slot(
    client: FlaskClient,
) -> None:
    appt = _booked(10)  # between 4 and 24 hours: the 50% late fee
    html, token = _quote(client, appt)
    assert "$200.00" in html and "Keep my appointment" in html and "late-cancellation" in html
    assert _fee_field(html) == "20000"
    db.session.expire_all()
    assert (
        db.session.get(Appointment, appt.id).status == AppointmentStatus.CONFIRMED
    )  # a quote only

    url = _url(appt)
    data = {"csrf_token": token, "quoted_fee_cents": "20000"}
    first = client.post(f"{url}/cancel/confirm", data=data)
    second = client.post(f"{url}/cancel/confirm", data=data)  # a double submit

    assert first.status_code == second.status_code == 303
    page = client.get(first.headers["Location"]).text
    assert "Your appointment is cancelled" in page and "$200.00" in page
    db.session.expire_all()
    done = db.session.get(Appointment, appt.id)
    assert done.status == AppointmentStatus.CANCELLED and done.cancellation_fee_cents == 20000
    charges = db.session.scalars(sa.select(Charge)).all()
    assert len(charges) == 1 and charges[0].amount_cents == 20000
    assert ledger.status_of(charges[0].id) == ChargeStatus.OWED  # no provider: owed at the desk
    assert db.session.get(Slot, appt.slot_id).status == SlotStatus.OPEN
    notes = db.session.scalars(
        sa.select(Notification).where(Notification.purpose == Purpose.CANCELLATION)
    ).all()
    assert len(notes) == 1 and notes[0].context["fee_cents"] == 20000
    assert_consistent()


def test_confirm_after_a_threshold_passed_shows_the_new_quote_and_charges_nothing(
    client: FlaskClient,
) -> None:
    clock = ManualClock(now_utc())
    with use_clock(clock):
        appt = _booked(24 + 1 / 60)  # 24 h 1 min ahead: free
        html, token = _quote(client, appt)
        assert "No charge" in html and _fee_field(html) == "0"
        clock.advance(timedelta(minutes=2))  # now less than 24 hours: the late fee
        page = client.post(
            f"{_url(appt)}/cancel/confirm", data={"csrf_token": token, "quoted_fee_cents": "0"}
        )
    assert page.status_code == 200
    assert "The fee changed since you looked" in page.text and "$200.00" in page.text
    db.session.expire_all()
    assert db.session.get(Appointment, appt.id).status == AppointmentStatus.CONFIRMED
    assert db.session.scalars(sa.select(Charge)).all() == []


def test_a_grace_cancellation_is_free_and_rejoins_the_waitlist(client: FlaskClient) -> None:
    appt = _booked(3, source=AppointmentSource.WAITLIST, booked_ago=timedelta(minutes=5))
    html, token = _quote(client, appt)
    assert "No charge" in html and "back on the waitlist" in html
    response = client.post(
        f"{_url(appt)}/cancel/confirm", data={"csrf_token": token, "quoted_fee_cents": "0"}
    )
    page = client.get(response.headers["Location"]).text
    assert "back on the waitlist" in page
    db.session.expire_all()
    done = db.session.get(Appointment, appt.id)
    assert done.grace_cancellation and done.cancellation_fee_cents == 0
    from portal.models import WaitlistEntry

    entry = db.session.get(WaitlistEntry, done.waitlist_entry_id)
    assert entry.status == WaitlistStatus.ACTIVE  # same entry, same preferences
    assert db.session.scalars(sa.select(Charge)).all() == []


def test_two_confirms_at_once_charge_once(app: Flask) -> None:
    appt = _booked(2)  # under 4 hours: the full price
    actor = Actor.patient(appt.patient_id)
    outcomes = race(
        app,
        [lambda: cancel_for_patient(appt.id, actor, expected_fee_cents=40000) and "ok"] * 4,
    )
    assert outcomes["ok"] == 4
    db.session.expire_all()
    assert len(db.session.scalars(sa.select(Charge)).all()) == 1
    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "appointment.cancelled")
    ).all()
    assert len(events) == 1
    assert_consistent()


def test_cancelling_reopens_the_slot_for_the_waitlist(app: Flask) -> None:
    appt = _booked(30)
    waiting = f.waitlist_entry(slot=appt.slot)
    db.session.commit()
    cancel_for_patient(appt.id, Actor.patient(appt.patient_id))
    db.session.commit()
    from portal.services.filling import advance

    outcome = advance(appt.slot_id)
    db.session.commit()
    assert [o.patient_id for o in outcome.offers] == [waiting.patient_id]


def test_staff_cancel_with_waiver_records_and_waives_the_fee(app: Flask) -> None:
    appt = _booked(2)
    staff = f.staff_user()
    db.session.commit()
    done = cancel_for_patient(appt.id, Actor.staff(staff), reason="Called: flu", waive_fee=True)
    db.session.commit()
    assert done.appointment.cancellation_fee_cents == 0
    assert ledger.status_of(done.charge.id) == ChargeStatus.WAIVED
    assert done.charge.amount_cents == 40000
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"appointment.fee_waived", "charge.waived"} <= actions


def test_a_patient_cannot_waive_their_own_fee(app: Flask) -> None:
    appt = _booked(2)
    from portal.services.errors import Conflict

    with pytest.raises(Conflict):
        cancel_for_patient(appt.id, Actor.patient(appt.patient_id), waive_fee=True)


@pytest.mark.parametrize(
    ("days_since_first", "flagged"),
    [(29, True), (30, True), (30.0001, False), (45, False)],
)
def test_frequent_cancellations_window_edge(days_since_first: float, flagged: bool) -> None:
    clock = ManualClock(now_utc())
    with use_clock(clock):
        first = _booked(24 * 60)
        patient = first.patient
        cancel_for_patient(first.id, Actor.patient(patient.id))
        db.session.commit()
        clock.advance(timedelta(days=days_since_first))
        second = _booked(24 * 60)
        second.patient_id = patient.id
        db.session.commit()
        cancel_for_patient(second.id, Actor.patient(patient.id))
        db.session.commit()
        assert recent_cancellations(patient.id, now_utc()) == (2 if flagged else 1)
    flags = db.session.scalars(
        sa.select(PatientFlag).where(PatientFlag.kind == FlagKind.FREQUENT_CANCELLATIONS)
    ).all()
    assert len(flags) == (1 if flagged else 0)


def test_the_window_includes_its_end_and_start() -> None:
    now = now_utc()
    start, end = cancellation_window(now)
    assert end == now and now - start == timedelta(days=30)


def test_clinic_releases_do_not_count_as_the_patients_cancellations() -> None:
    from portal.services.audit import SYSTEM
    from portal.services.release import release_slot

    appt = _booked(48)
    release_slot(appt.slot_id, SYSTEM, reason="practitioner unwell")
    db.session.commit()
    assert recent_cancellations(appt.patient_id, now_utc()) == 0


def test_the_api_cancels_with_the_policy_fee(client: FlaskClient) -> None:
    from portal.services.api_tokens import create_api_token

    appt = _booked(10)
    from portal.services.audit import SYSTEM as system

    _, token = create_api_token("test", system)
    response = client.post(
        f"/api/v1/appointments/{appt.id}/cancel",
        json={"reason": "patient called"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "cancelled"
    assert response.json["cancellation_fee_cents"] == 20000
    assert response.json["cancellation_tier"] == "late"
    waived = _booked(10)
    response = client.post(
        f"/api/v1/appointments/{waived.id}/cancel",
        json={"reason": "clinic goodwill", "waive_fee": True},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json["cancellation_fee_cents"] == 0
    missing = client.post(
        f"/api/v1/appointments/{waived.id}/cancel",
        json={},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert missing.status_code == 422
