"""The offer page: local times, read-only GETs, accepting, declining, closed offers."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Charge, Offer, Slot
from portal.models.enums import (
    AppointmentSource,
    ChargeKind,
    OfferStatus,
    SlotStatus,
)
from portal.services import responses
from portal.services.audit import Actor
from portal.services.timezones import to_local
from tests.conftest import csrf_token_from
from tests.patient.conftest import Scene, offer_token, post_form


def _state() -> tuple[int, int, list[tuple[int, str]], list[str]]:
    db.session.expire_all()
    return (
        db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)),
        db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)),
        [(o.id, o.status.value) for o in db.session.scalars(sa.select(Offer).order_by(Offer.id))],
        [s.status.value for s in db.session.scalars(sa.select(Slot).order_by(Slot.id))],
    )


def test_offer_page_shows_patient_local_time_and_practice_time(
    client: FlaskClient, scene: Scene
) -> None:
    html = client.get(f"/o/{offer_token(scene.offer_a)}").get_data(as_text=True)

    pacific = to_local(scene.slot.start_at, "America/Los_Angeles").tzname()
    eastern = to_local(scene.slot.start_at, "America/New_York").tzname()
    assert f'7:00 AM <abbr class="slot-zone" title="Your time zone">{pacific}</abbr>' in html
    assert f"10:00 AM {eastern} at the clinic" in html
    assert "Botox" in html and "Dr. Maya Lee" in html and "Fifth Avenue" in html
    assert "Hi Ana" in html and "Glow Medical Spa" in html
    assert "data-countdown=" in html
    assert 'action="/o/' in html and "/accept" in html and "/decline" in html
    assert "data-confirm=" in html
    assert "Ben" not in html


def test_offer_page_hides_practice_time_when_same_zone(client: FlaskClient, scene: Scene) -> None:
    scene.patient_a.timezone = "America/New_York"
    db.session.commit()

    html = client.get(f"/o/{offer_token(scene.offer_a)}").get_data(as_text=True)

    assert "10:00 AM" in html
    assert "at the clinic" not in html


def test_get_changes_nothing(client: FlaskClient, scene: Scene) -> None:
    before = _state()
    for _ in range(3):
        assert client.get(f"/o/{offer_token(scene.offer_a)}").status_code == 200
    assert _state() == before


def test_accept_books_and_redirects_to_appointment(client: FlaskClient, scene: Scene) -> None:
    url = f"/o/{offer_token(scene.offer_a)}"

    response = post_form(client, url, f"{url}/accept")

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/a/")
    db.session.expire_all()
    appointment = db.session.scalars(sa.select(Appointment)).one()
    assert appointment.patient_id == scene.patient_a.id
    assert appointment.source == AppointmentSource.WAITLIST
    assert db.session.get(Slot, scene.slot.id).status == SlotStatus.BOOKED
    assert db.session.get(Offer, scene.offer_b.id).status == OfferStatus.WITHDRAWN

    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "You're booked" in html and "7:00 AM" in html and "10:00 AM E" in html
    assert "500 Fifth Ave" in html and "(212) 555-0100" in html
    assert 'class="badge confirmed"' in html

    again = client.get(url).get_data(as_text=True)
    assert "You booked this time" in again and 'href="/a/' in again


def test_second_accept_gets_alternatives(client: FlaskClient, scene: Scene) -> None:
    url_a, url_b = f"/o/{offer_token(scene.offer_a)}", f"/o/{offer_token(scene.offer_b)}"
    page_b = client.get(url_b)  # B opened the page while it was still open
    post_form(client, url_a, f"{url_a}/accept")

    response = client.post(
        f"{url_b}/accept", data={"csrf_token": csrf_token_from(page_b.get_data(as_text=True))}
    )

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "just taken" in html
    first, second = (
        html.index(f"/alternatives/{scene.same_practitioner_alt.id}"),
        html.index(f"/alternatives/{scene.other_practitioner_alt.id}"),
    )
    assert first < second  # same practitioner ranks first
    assert "Same practitioner · Same day" in html
    assert html.count("Book this time") == 2
    assert "Ana" not in html
    db.session.expire_all()
    assert db.session.scalars(sa.select(Appointment)).one().patient_id == scene.patient_a.id


def test_withdrawn_offer_page_lists_alternatives(client: FlaskClient, scene: Scene) -> None:
    responses.accept_offer(scene.offer_a.id, actor=Actor.patient(scene.patient_a.id))
    db.session.commit()

    html = client.get(f"/o/{offer_token(scene.offer_b)}").get_data(as_text=True)

    assert "This time has been filled" in html
    assert f"/alternatives/{scene.same_practitioner_alt.id}" in html


def test_taken_without_alternatives_keeps_patient_on_waitlist(
    client: FlaskClient, scene: Scene
) -> None:
    for alt in (scene.same_practitioner_alt, scene.other_practitioner_alt):
        alt.status = SlotStatus.CLOSED
    responses.accept_offer(scene.offer_a.id, actor=Actor.patient(scene.patient_a.id))
    db.session.commit()

    html = client.get(f"/o/{offer_token(scene.offer_b)}").get_data(as_text=True)

    assert "still on the waitlist" in html
    assert "/alternatives/" not in html


def test_decline_shows_declined_page(client: FlaskClient, scene: Scene) -> None:
    url = f"/o/{offer_token(scene.offer_a)}"

    response = post_form(client, url, f"{url}/decline")

    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Offer, scene.offer_a.id).status == OfferStatus.DECLINED
    html = client.get(url).get_data(as_text=True)
    assert "You passed on this time" in html and "still on the waitlist" in html
    assert "/accept" not in html


def test_offer_past_its_window_shows_expired_page(client: FlaskClient, scene: Scene) -> None:
    scene.offer_a.window_expires_at = now_utc() - timedelta(minutes=1)
    db.session.commit()
    url = f"/o/{offer_token(scene.offer_a)}"

    html = client.get(url).get_data(as_text=True)

    assert "time ran out" in html and "still on the waitlist" in html
    assert "/accept" not in html


def test_accepting_an_expired_offer_books_nothing(client: FlaskClient, scene: Scene) -> None:
    url = f"/o/{offer_token(scene.offer_a)}"
    page = client.get(url)
    scene.offer_a.window_expires_at = now_utc() - timedelta(minutes=1)
    db.session.commit()

    response = client.post(
        f"{url}/accept", data={"csrf_token": csrf_token_from(page.get_data(as_text=True))}
    )

    assert response.status_code == 303
    assert "time ran out" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 0


def test_post_without_csrf_token_is_refused(client: FlaskClient, scene: Scene) -> None:
    url = f"/o/{offer_token(scene.offer_a)}"

    response = client.post(f"{url}/accept")

    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Offer, scene.offer_a.id).status == OfferStatus.PENDING


def test_deposit_patient_gets_a_hold(client: FlaskClient, scene: Scene) -> None:
    scene.patient_a.deposit_required = True
    db.session.commit()
    url = f"/o/{offer_token(scene.offer_a)}"

    response = post_form(client, url, f"{url}/accept")

    assert response.status_code == 303
    db.session.expire_all()
    slot = db.session.get(Slot, scene.slot.id)
    assert slot.status == SlotStatus.HELD and slot.hold_offer_id == scene.offer_a.id
    charge = db.session.scalars(sa.select(Charge)).one()
    assert charge.kind == ChargeKind.DEPOSIT and charge.amount_cents == 5000
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "holding this slot for you" in html
    assert "$50.00" in html and "(212) 555-0100" in html
    assert "data-countdown=" in html


def test_someone_elses_hold_keeps_the_offer_open(client: FlaskClient, scene: Scene) -> None:
    scene.patient_a.deposit_required = True
    responses.accept_offer(scene.offer_a.id, actor=Actor.patient(scene.patient_a.id))
    db.session.commit()
    url = f"/o/{offer_token(scene.offer_b)}"

    response = post_form(client, url, f"{url}/accept")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "completing a booking for this slot right now" in html
    assert "/accept" in html
    db.session.expire_all()
    assert db.session.get(Offer, scene.offer_b.id).status == OfferStatus.PENDING


def test_accepting_twice_goes_to_the_same_appointment(client: FlaskClient, scene: Scene) -> None:
    url = f"/o/{offer_token(scene.offer_a)}"
    first = post_form(client, url, f"{url}/accept")

    token = csrf_token_from(client.get(first.headers["Location"]).get_data(as_text=True))
    second = client.post(f"{url}/accept", data={"csrf_token": token})

    assert second.status_code == 303
    assert "You booked this time" in client.get(second.headers["Location"]).get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1
