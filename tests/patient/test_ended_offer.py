"""An ended offer (expired or withdrawn) is no dead end: the best ways forward are shown.

When the offered time is still open the patient may still book it; otherwise, and
besides, the best alternatives are listed as on the "just taken" page.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Appointment
from portal.models.enums import AppointmentSource, OfferStatus, SlotStatus
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.patient.conftest import Scene, offer_token


def _end(scene: Scene, how: str) -> None:
    offer = scene.offer_a
    if how == "expired":
        offer.status = OfferStatus.EXPIRED
        offer.window_expires_at = now_utc() - timedelta(minutes=5)
    elif how == "window passed":  # still pending: the expiry job has not run yet
        offer.window_expires_at = now_utc() - timedelta(minutes=1)
    else:
        offer.status = OfferStatus.WITHDRAWN
    db.session.commit()


@pytest.mark.parametrize("how", ["expired", "window passed", "withdrawn"])
def test_an_ended_offer_with_the_slot_still_open_offers_it_and_the_alternatives(
    client: FlaskClient, scene: Scene, how: str
) -> None:
    _end(scene, how)
    token = offer_token(scene.offer_a)

    html = client.get(f"/o/{token}").text

    assert "This offer has ended" in html
    assert "still open" in html
    assert f"/o/{token}/alternatives/{scene.slot.id}" in html
    assert f"/o/{token}/alternatives/{scene.same_practitioner_alt.id}" in html
    assert f"/o/{token}/alternatives/{scene.other_practitioner_alt.id}" in html
    assert html.count("Book this time") == 3
    assert "/accept" not in html


def test_the_still_open_time_can_be_booked_from_the_ended_offer(
    client: FlaskClient, scene: Scene
) -> None:
    _end(scene, "expired")
    token = offer_token(scene.offer_a)
    page = client.get(f"/o/{token}")

    response = client.post(
        f"/o/{token}/alternatives/{scene.slot.id}", data={"csrf_token": csrf_token_from(page.text)}
    )

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/a/")
    appointment = db.session.scalars(sa.select(Appointment)).one()
    assert appointment.slot_id == scene.slot.id and appointment.patient_id == scene.patient_a.id
    assert appointment.source == AppointmentSource.ALTERNATIVE
    # Coming back to the ended offer now shows the booking, not the choices again.
    again = client.get(f"/o/{token}")
    assert "/alternatives/" not in again.text


def test_an_alternative_can_be_booked_from_the_ended_offer(
    client: FlaskClient, scene: Scene
) -> None:
    _end(scene, "expired")
    token = offer_token(scene.offer_a)
    page = client.get(f"/o/{token}")

    response = client.post(
        f"/o/{token}/alternatives/{scene.other_practitioner_alt.id}",
        data={"csrf_token": csrf_token_from(page.text)},
    )

    assert response.status_code == 303
    appointment = db.session.scalars(sa.select(Appointment)).one()
    assert appointment.slot_id == scene.other_practitioner_alt.id


def test_an_ended_offer_whose_slot_went_elsewhere_lists_only_alternatives(
    client: FlaskClient, scene: Scene
) -> None:
    _end(scene, "expired")
    scene.slot.status = SlotStatus.BOOKED
    f.appointment(slot=scene.slot, patient=scene.patient_b)
    db.session.commit()
    token = offer_token(scene.offer_a)

    html = client.get(f"/o/{token}").text

    assert "This offer has ended" in html
    assert f'/alternatives/{scene.slot.id}"' not in html
    assert html.count("Book this time") == 2


def test_the_slot_itself_cannot_be_booked_through_a_lost_race(
    client: FlaskClient, scene: Scene
) -> None:
    """On the "just taken" page the offered slot is never a choice (it is booked)."""
    scene.offer_a.status = OfferStatus.WITHDRAWN
    scene.slot.status = SlotStatus.BOOKED
    f.appointment(slot=scene.slot, patient=scene.patient_b)
    db.session.commit()
    token = offer_token(scene.offer_a)
    page = client.get(f"/o/{token}")
    assert "This time has been filled" in page.text

    response = client.post(
        f"/o/{token}/alternatives/{scene.slot.id}", data={"csrf_token": csrf_token_from(page.text)}
    )
    assert response.status_code == 200
    assert "that time isn&#39;t available any more" in response.text


def test_an_ended_offer_with_nothing_left_keeps_the_patient_on_the_waitlist(
    client: FlaskClient, scene: Scene
) -> None:
    _end(scene, "expired")
    for slot in (scene.slot, scene.same_practitioner_alt, scene.other_practitioner_alt):
        slot.status = SlotStatus.CLOSED
    db.session.commit()

    html = client.get(f"/o/{offer_token(scene.offer_a)}").text

    assert "This offer has ended" in html and "time ran out" in html
    assert "still on the waitlist" in html
    assert "/alternatives/" not in html
    assert "(212) 555-0100" in html


def test_a_patient_who_must_pay_first_is_offered_a_hold(client: FlaskClient, scene: Scene) -> None:
    scene.patient_a.deposit_required = True
    _end(scene, "expired")

    html = client.get(f"/o/{offer_token(scene.offer_a)}").text

    assert "This offer has ended" in html
    assert "Book this time" not in html and "Hold this time and pay" in html
    assert "or call the clinic at (212) 555-0100" in html
