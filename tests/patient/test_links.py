"""Signed links: forged, foreign, cross-purpose and expired tokens never show anyone's data."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Appointment
from portal.models.enums import AppointmentSource
from portal.services.links import LinkPurpose, make_token
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.patient.conftest import Scene, offer_token

PRIVATE = ("Ana", "Ben", "Alvarez", "Brooks", "Botox", "Maya Lee", "Fifth Avenue")


def _assert_invalid_page(response: object, status: int = 404) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == status
    if status == 404:
        assert "This link isn't valid" in html
    else:
        assert "This link has expired" in html
    # Whole words only: random tokens (CSRF, links) may contain "Ben" by chance.
    for word in PRIVATE:
        assert not re.search(rf"\b{re.escape(word)}\b", html), word


def _tamper(token: str) -> str:
    body, _, signature = token.rpartition(".")
    return f"{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def test_tampered_signature_is_not_found(client: FlaskClient, scene: Scene) -> None:
    _assert_invalid_page(client.get(f"/o/{_tamper(offer_token(scene.offer_a))}"))


def test_garbage_token_is_not_found(client: FlaskClient, scene: Scene) -> None:
    _assert_invalid_page(client.get("/o/not-a-token"))


def test_token_naming_someone_elses_offer_is_not_found(client: FlaskClient, scene: Scene) -> None:
    """A validly signed token for patient A that names offer B (A's id, B's offer)."""
    expires = scene.slot.start_at + timedelta(days=2)
    token = make_token(LinkPurpose.OFFER, scene.offer_b.id, scene.patient_a.id, expires)

    _assert_invalid_page(client.get(f"/o/{token}"))


def test_token_for_a_missing_offer_is_not_found(client: FlaskClient, scene: Scene) -> None:
    token = make_token(LinkPurpose.OFFER, 999_999, scene.patient_a.id, now_utc() + timedelta(1))

    _assert_invalid_page(client.get(f"/o/{token}"))


def test_appointment_token_does_not_open_an_offer(client: FlaskClient, scene: Scene) -> None:
    expires = scene.slot.start_at + timedelta(days=2)
    token = make_token(LinkPurpose.APPOINTMENT, scene.offer_a.id, scene.patient_a.id, expires)

    _assert_invalid_page(client.get(f"/o/{token}"))


def test_offer_token_does_not_open_an_appointment(client: FlaskClient, scene: Scene) -> None:
    appointment = f.appointment(slot=scene.same_practitioner_alt, patient=scene.patient_a)
    db.session.commit()
    token = make_token(
        LinkPurpose.OFFER, appointment.id, scene.patient_a.id, now_utc() + timedelta(days=1)
    )

    _assert_invalid_page(client.get(f"/a/{token}"))


def test_appointment_of_another_patient_is_not_found(client: FlaskClient, scene: Scene) -> None:
    appointment = f.appointment(slot=scene.same_practitioner_alt, patient=scene.patient_b)
    db.session.commit()
    token = make_token(
        LinkPurpose.APPOINTMENT, appointment.id, scene.patient_a.id, now_utc() + timedelta(days=1)
    )

    _assert_invalid_page(client.get(f"/a/{token}"))


@pytest.mark.parametrize("path", ["/o/{}", "/a/{}"])
def test_expired_link_is_gone(client: FlaskClient, scene: Scene, path: str) -> None:
    purpose = LinkPurpose.OFFER if path.startswith("/o/") else LinkPurpose.APPOINTMENT
    token = make_token(purpose, scene.offer_a.id, scene.patient_a.id, now_utc() - timedelta(1))

    _assert_invalid_page(client.get(path.format(token)), status=410)


@pytest.mark.parametrize("action", ["accept", "decline", "alternatives/1"])
def test_posts_with_a_foreign_token_change_nothing(
    client: FlaskClient, scene: Scene, action: str
) -> None:
    csrf = csrf_token_from(client.get(f"/o/{offer_token(scene.offer_a)}").get_data(as_text=True))
    expires = scene.slot.start_at + timedelta(days=2)
    token = make_token(LinkPurpose.OFFER, scene.offer_b.id, scene.patient_a.id, expires)

    response = client.post(f"/o/{token}/{action}", data={"csrf_token": csrf})

    _assert_invalid_page(response)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 0


def test_appointment_page_shows_local_and_clinic_time(client: FlaskClient, scene: Scene) -> None:
    appointment = f.appointment(
        slot=scene.slot, patient=scene.patient_a, source=AppointmentSource.WAITLIST
    )
    db.session.commit()
    expires = scene.slot.start_at + timedelta(days=30)
    token = make_token(LinkPurpose.APPOINTMENT, appointment.id, scene.patient_a.id, expires)

    html = client.get(f"/a/{token}").get_data(as_text=True)

    assert "7:00 AM" in html and "10:00 AM" in html and "at the clinic" in html
    assert "Dr. Maya Lee" in html and "500 Fifth Ave, New York" in html
    assert 'href="tel:+12125550100"' in html
    assert 'class="badge booked"' in html
