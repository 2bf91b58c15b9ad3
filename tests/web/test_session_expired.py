"""A form posted from an expired session (CSRF failure): a branded page saying what to do.

Nothing was done, and the page says so, with one button to the place to try again:
the sign-in form, the page the action came from, or the patient's own offer.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.db import db
from portal.models import AuditEvent, Slot
from portal.models.enums import SlotStatus
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.patient.conftest import Scene, build_scene, offer_token
from tests.staff.conftest import PASSWORD

STALE = "IjA3ZDg.stale.token"


def _branded(html: str) -> None:
    assert 'class="brand-mark"' in html
    assert "Your session expired" in html
    assert "Nothing was changed" in html or "Nothing was sent" in html
    assert "Error 400" not in html and "Bad Request" not in html


def test_an_expired_login_form_says_sign_in_again(app: Flask, staff) -> None:
    client = app.test_client()
    client.get("/staff/login?next=/staff/day")
    response = client.post(
        "/staff/login",
        data={
            "csrf_token": STALE,
            "email": staff.email,
            "password": PASSWORD,
            "next": "/staff/day",
        },
    )
    assert response.status_code == 400
    _branded(response.text)
    assert 'href="/staff/login?next=/staff/day"' in response.text
    assert PASSWORD not in response.text
    assert client.get("/staff/").status_code == 302  # not signed in


def test_an_expired_staff_action_changes_nothing_and_leads_back(signed_in: FlaskClient) -> None:
    slot = f.slot(status=SlotStatus.BOOKED)
    f.appointment(slot=slot)
    response = signed_in.post(f"/staff/slots/{slot.id}/release", data={"csrf_token": STALE})

    assert response.status_code == 400
    _branded(response.text)
    assert f'href="/staff/slots/{slot.id}"' in response.text
    db.session.expire_all()
    assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED
    assert (
        db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "slot.opened")) is None
    )


def test_an_action_after_signing_out_elsewhere_asks_to_sign_in(
    app: Flask, signed_in: FlaskClient
) -> None:
    slot = f.slot()
    with signed_in.session_transaction() as session:
        session.clear()  # signed out in another tab: the session and its CSRF secret are gone
    response = signed_in.post(f"/staff/slots/{slot.id}/restart-filling", data={"csrf_token": STALE})
    assert response.status_code == 400
    _branded(response.text)
    assert "signed out" in response.text
    assert f'href="/staff/login?next=/staff/slots/{slot.id}"' in response.text


def test_an_expired_htmx_action_reloads_the_page_with_a_message(signed_in: FlaskClient) -> None:
    slot = f.slot()
    response = signed_in.post(
        f"/staff/slots/{slot.id}/restart-filling",
        data={"csrf_token": STALE},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://localhost/staff/day?date=2030-01-02",
        },
    )
    assert response.status_code == 400
    assert response.headers["HX-Redirect"] == "/staff/day?date=2030-01-02"
    page = signed_in.get("/staff/day?date=2030-01-02")
    assert "Your session expired, so nothing was changed" in page.text


def test_an_htmx_action_never_redirects_to_another_host(signed_in: FlaskClient) -> None:
    slot = f.slot()
    response = signed_in.post(
        f"/staff/slots/{slot.id}/restart-filling",
        data={"csrf_token": STALE},
        headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/staff/day"},
    )
    assert response.headers["HX-Redirect"] == f"/staff/slots/{slot.id}"


def test_an_expired_patient_tap_leads_back_to_the_offer_with_the_clinic_phone(
    app: Flask,
) -> None:
    scene: Scene = build_scene()
    token = offer_token(scene.offer_a)
    client = app.test_client()
    response = client.post(f"/o/{token}/accept", data={"csrf_token": STALE})

    assert response.status_code == 400
    _branded(response.text)
    assert f'href="/o/{token}"' in response.text
    assert "(212) 555-0100" in response.text
    db.session.refresh(scene.slot)
    assert scene.slot.status == SlotStatus.OPEN


def test_a_fresh_token_still_works(signed_in: FlaskClient) -> None:
    slot = f.slot()
    token = csrf_token_from(signed_in.get("/staff/").text)
    response = signed_in.post(f"/staff/slots/{slot.id}/release", data={"csrf_token": token})
    assert response.status_code == 303
