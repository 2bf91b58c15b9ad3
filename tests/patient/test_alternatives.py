"""Booking an alternative after losing a slot: only real alternatives, only once."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db
from portal.models import Appointment, Slot
from portal.models.enums import AppointmentSource, SlotStatus
from portal.services import booking, responses
from portal.services.audit import Actor
from tests import factories as f
from tests.patient.conftest import Scene, offer_token, post_form, tomorrow_at


def _lose_the_race(scene: Scene) -> str:
    responses.accept_offer(scene.offer_a.id, actor=Actor.patient(scene.patient_a.id))
    db.session.commit()
    return f"/o/{offer_token(scene.offer_b)}"


def _appointments_of(patient_id: int) -> list[Appointment]:
    db.session.expire_all()
    return list(
        db.session.scalars(sa.select(Appointment).where(Appointment.patient_id == patient_id))
    )


def test_book_an_alternative(client: FlaskClient, scene: Scene) -> None:
    url = _lose_the_race(scene)
    alt = scene.same_practitioner_alt

    response = post_form(client, url, f"{url}/alternatives/{alt.id}")

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/a/")
    [appointment] = _appointments_of(scene.patient_b.id)
    assert appointment.slot_id == alt.id
    assert appointment.source == AppointmentSource.ALTERNATIVE
    assert db.session.get(Slot, alt.id).status == SlotStatus.BOOKED
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You're booked" in html and "10:00 AM" in html  # 13:00 ET is 10:00 PT


def test_only_one_alternative_per_lost_offer(client: FlaskClient, scene: Scene) -> None:
    url = _lose_the_race(scene)
    first = post_form(client, url, f"{url}/alternatives/{scene.same_practitioner_alt.id}")

    second = post_form(client, url, f"{url}/alternatives/{scene.other_practitioner_alt.id}")

    assert second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert len(_appointments_of(scene.patient_b.id)) == 1
    assert "another time" in client.get(url).get_data(as_text=True)


def test_slot_that_is_not_an_alternative_is_refused(client: FlaskClient, scene: Scene) -> None:
    url = _lose_the_race(scene)
    other_service = f.slot(start_at=tomorrow_at(12), practitioner=scene.slot.practitioner)
    too_far = f.slot(
        start_at=scene.slot.start_at + timedelta(days=5),
        practitioner=scene.slot.practitioner,
        service=scene.slot.service,
    )
    db.session.commit()

    for slot_id in (other_service.id, too_far.id, scene.slot.id, 999_999):
        response = post_form(client, url, f"{url}/alternatives/{slot_id}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "available any more" in html
        assert f"/alternatives/{scene.same_practitioner_alt.id}" in html

    assert _appointments_of(scene.patient_b.id) == []
    assert db.session.get(Slot, other_service.id).status == SlotStatus.OPEN


def test_alternative_taken_meanwhile_shows_fresh_list(client: FlaskClient, scene: Scene) -> None:
    url = _lose_the_race(scene)
    page = client.get(url)
    outsider = f.patient()
    booking.book_slot(
        scene.same_practitioner_alt.id,
        outsider,
        source=AppointmentSource.STAFF,
        actor=Actor.patient(outsider.id),
    )
    db.session.commit()
    from tests.conftest import csrf_token_from

    response = client.post(
        f"{url}/alternatives/{scene.same_practitioner_alt.id}",
        data={"csrf_token": csrf_token_from(page.get_data(as_text=True))},
    )

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"/alternatives/{scene.other_practitioner_alt.id}" in html
    assert f"/alternatives/{scene.same_practitioner_alt.id}" not in html
    assert _appointments_of(scene.patient_b.id) == []


def test_alternatives_cannot_be_booked_while_the_offer_is_open(
    client: FlaskClient, scene: Scene
) -> None:
    url = f"/o/{offer_token(scene.offer_b)}"

    response = post_form(client, url, f"{url}/alternatives/{scene.same_practitioner_alt.id}")

    assert response.status_code == 303
    assert _appointments_of(scene.patient_b.id) == []


def test_deposit_patient_holds_an_alternative_through_the_same_hold(
    client: FlaskClient, scene: Scene
) -> None:
    from portal.models import Offer, Slot
    from portal.models.enums import SlotStatus
    from portal.services import ledger

    scene.patient_b.deposit_required = True
    url = _lose_the_race(scene)

    html = client.get(url).get_data(as_text=True)
    assert "Hold this time and pay" in html and "(212) 555-0100" in html
    response = post_form(client, url, f"{url}/alternatives/{scene.same_practitioner_alt.id}")

    assert response.status_code == 303
    assert _appointments_of(scene.patient_b.id) == []  # held, not booked, until paid
    db.session.expire_all()
    alt = db.session.get(Slot, scene.same_practitioner_alt.id)
    assert alt.status == SlotStatus.HELD
    held = db.session.get(Offer, alt.hold_offer_id)
    assert held.patient_id == scene.patient_b.id
    assert ledger.hold_charge(held.id).amount_cents == 5000
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "holding this slot for you" in page
