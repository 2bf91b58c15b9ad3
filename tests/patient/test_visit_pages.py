"""The appointment page: confirm, pick another time, and "Not your time zone?"."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db
from portal.models import Appointment, AuditEvent, Charge, Notification, Reminder, Slot
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    Purpose,
    ReminderStatus,
    SlotStatus,
    TimezoneSource,
)
from portal.services import booking, reschedule
from portal.services.audit import SYSTEM
from portal.services.links import appointment_token
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.patient.conftest import Scene, tomorrow_at


@pytest.fixture
def visit(scene: Scene) -> Appointment:
    """Ana (in LA) booked by staff into the 10:00 ET slot tomorrow: booked, not confirmed."""
    later = f.slot(
        start_at=tomorrow_at(10) + timedelta(days=3),
        practitioner=scene.slot.practitioner,
        service=scene.slot.service,
    )
    appointment = booking.book_slot(
        later.id, scene.patient_a, source=AppointmentSource.STAFF, actor=SYSTEM
    )
    db.session.commit()
    return appointment


def page(appointment: Appointment) -> str:
    token = appointment_token(appointment.id, appointment.patient_id, appointment.slot.start_at)
    return f"/a/{token}"


def post(client: FlaskClient, page_url: str, action: str, **data: str):
    html = client.get(page_url).get_data(as_text=True).replace("&#39;", "'")
    return client.post(action, data={"csrf_token": csrf_token_from(html), **data})


def test_confirm_marks_the_appointment_confirmed_audited(
    client: FlaskClient, visit: Appointment
) -> None:
    url = page(visit)
    html = client.get(url).get_data(as_text=True).replace("&#39;", "'")
    assert "Confirm I'm coming" in html and "Please confirm" in html

    response = post(client, url, f"{url}/confirm")

    assert response.status_code == 303 and response.location.endswith(url)
    db.session.expire_all()
    assert visit.status == AppointmentStatus.CONFIRMED and visit.confirmed_at is not None
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "appointment.confirmed")
    ).one()
    assert event.actor_type == "patient"
    after = client.get(url).get_data(as_text=True).replace("&#39;", "'")
    assert "you're confirmed" in after and "Confirm I'm coming" not in after


def test_the_reschedule_list_ranks_open_times_in_the_patients_zone(
    client: FlaskClient, scene: Scene, visit: Appointment
) -> None:
    html = client.get(f"{page(visit)}/reschedule").get_data(as_text=True).replace("&#39;", "'")

    assert "Pick another time" in html
    # Tomorrow's open 13:00 ET (Lee) outranks 11:00 ET (Kim); shown in Ana's Pacific time.
    first, second = html.index("10:00 AM"), html.index("8:00 AM")
    assert first < second
    assert "PST" in html or "PDT" in html
    assert "Same practitioner" in html
    assert f"/reschedule/{scene.same_practitioner_alt.id}" in html


def test_moving_books_the_new_time_and_reopens_the_old_one_at_once(
    client: FlaskClient, scene: Scene, visit: Appointment
) -> None:
    url, old_slot_id = page(visit), visit.slot_id
    new_slot = scene.same_practitioner_alt
    sequence = visit.calendar_sequence

    response = post(client, f"{url}/reschedule", f"{url}/reschedule/{new_slot.id}")

    assert response.status_code == 303
    db.session.expire_all()
    moved = db.session.get(Appointment, visit.id)
    assert moved.slot_id == new_slot.id and moved.status == AppointmentStatus.CONFIRMED
    assert moved.calendar_sequence == sequence + 1
    old = db.session.get(Slot, old_slot_id)
    assert old.status == SlotStatus.OPEN and old.opened_at is not None
    assert db.session.get(Slot, new_slot.id).status == SlotStatus.BOOKED
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.dedupe_key == f"moved:{visit.id}:{sequence + 1}")
        )
        == 1
    )
    live = db.session.scalars(
        sa.select(Reminder).where(Reminder.status == ReminderStatus.SCHEDULED)
    ).all()
    assert all(r.slot_start_at == new_slot.start_at for r in live)
    assert "your appointment is now" in client.get(response.location).get_data(
        as_text=True
    ).replace("&#39;", "'")


def test_a_time_taken_meanwhile_keeps_the_old_booking_and_says_so(
    client: FlaskClient, scene: Scene, visit: Appointment
) -> None:
    url = page(visit)
    target = scene.same_practitioner_alt
    html = client.get(f"{url}/reschedule").get_data(as_text=True).replace("&#39;", "'")
    booking.book_slot(target.id, scene.patient_b, source=AppointmentSource.STAFF, actor=SYSTEM)
    db.session.commit()

    response = client.post(
        f"{url}/reschedule/{target.id}", data={"csrf_token": csrf_token_from(html)}
    )

    assert response.status_code == 200
    assert "isn't available any more" in response.get_data(as_text=True).replace("&#39;", "'")
    db.session.expire_all()
    assert db.session.get(Appointment, visit.id).slot_id == visit.slot_id


def test_a_fee_for_leaving_the_old_time_must_be_accepted_and_is_recorded(
    client: FlaskClient, scene: Scene, visit: Appointment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reschedule, "late_change_fee_cents", lambda appointment, now: 2500)
    from portal.services.settings import set_setting

    set_setting("reschedule_free_with_notice", False)
    url = page(visit)
    html = client.get(f"{url}/reschedule").get_data(as_text=True).replace("&#39;", "'")
    assert "fee of $25.00" in html and 'name="accept_fee_cents" value="2500"' in html

    token = csrf_token_from(html)
    target = scene.same_practitioner_alt.id
    refused = client.post(f"{url}/reschedule/{target}", data={"csrf_token": token})
    assert "late-change fee of $25.00" in refused.get_data(as_text=True).replace("&#39;", "'")
    accepted = client.post(
        f"{url}/reschedule/{target}", data={"csrf_token": token, "accept_fee_cents": "2500"}
    )

    assert accepted.status_code == 303
    charge = db.session.scalars(sa.select(Charge)).one()
    assert charge.amount_cents == 2500 and charge.appointment_id == visit.id


def test_a_move_with_enough_notice_is_free_by_default(visit: Appointment) -> None:
    from portal.clock import now_utc

    assert reschedule.fee_for_leaving_old_time(visit, now_utc()) == 0


def test_not_your_time_zone_rerenders_in_the_chosen_zone_and_remembers_it(
    client: FlaskClient, scene: Scene, visit: Appointment
) -> None:
    url = page(visit)
    before = client.get(url).get_data(as_text=True).replace("&#39;", "'")
    assert "Not your time zone?" in before and "Los Angeles" in before
    assert "7:00 AM" in before  # 10:00 ET read in Pacific time

    response = post(client, url, f"{url}/timezone", timezone="America/New_York")

    assert response.status_code == 303
    after = client.get(response.location).get_data(as_text=True).replace("&#39;", "'")
    assert "10:00 AM" in after and "Times are now shown for New York" in after
    assert "at the clinic" not in after  # the same zone as the clinic now
    db.session.expire_all()
    patient = scene.patient_a
    assert (patient.timezone, patient.timezone_source) == (
        "America/New_York",
        TimezoneSource.EXPLICIT,
    )


def test_an_unknown_zone_is_refused_kindly(client: FlaskClient, visit: Appointment) -> None:
    url = page(visit)
    response = post(client, url, f"{url}/timezone", timezone="Mars/Olympus_Mons")
    assert response.status_code == 303
    assert "don't know that time zone" in client.get(url).get_data(as_text=True).replace(
        "&#39;", "'"
    )


def _offer_token(scene: Scene) -> str:
    from tests.patient.conftest import offer_token

    return offer_token(scene.offer_a)


def test_cancelled_appointments_offer_no_confirm_or_move(
    client: FlaskClient, visit: Appointment
) -> None:
    from portal.services.release import release_slot

    release_slot(visit.slot_id, SYSTEM)
    db.session.commit()
    url = page(visit)
    html = client.get(url).get_data(as_text=True).replace("&#39;", "'")
    assert "Confirm I'm coming" not in html and "Pick another time" not in html
    moved = client.get(f"{url}/reschedule").get_data(as_text=True).replace("&#39;", "'")
    assert "cannot be moved" in moved and "Move to this time" not in moved
    assert Purpose.CANCELLATION
