"""GET /a/<token>/calendar.ics and the calendar options on the appointment page."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask.testing import FlaskClient
from icalendar import Calendar

from portal.db import db, now_utc
from portal.models.enums import AppointmentStatus
from portal.services.links import LinkPurpose, make_token
from tests import factories as f
from tests.calendar.conftest import LA, Visit, book_visit


def test_a_valid_link_downloads_the_event(client: FlaskClient, la_visit: Visit) -> None:
    response = client.get(f"{la_visit.path}/calendar.ics")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="appointment.ics"'
    assert response.headers["Cache-Control"] == "no-store"
    (event,) = Calendar.from_ical(response.data).events
    assert str(event["UID"]) == f"appointment-{la_visit.appointment.id}@portal.test"
    assert event["DTSTART"].params["TZID"] == LA


def test_another_patients_appointment_is_not_found(client: FlaskClient, la_visit: Visit) -> None:
    stranger = f.patient(name="Sam Other")
    db.session.commit()
    expires = now_utc() + timedelta(days=1)
    token = make_token(LinkPurpose.APPOINTMENT, la_visit.appointment.id, stranger.id, expires)

    response = client.get(f"/a/{token}/calendar.ics")

    assert response.status_code == 404
    assert b"BEGIN:VCALENDAR" not in response.data


def test_a_tampered_link_is_not_found(client: FlaskClient, la_visit: Visit) -> None:
    tampered = la_visit.token[:-3] + ("aaa" if not la_visit.token.endswith("aaa") else "bbb")
    assert client.get(f"/a/{tampered}/calendar.ics").status_code == 404


def test_an_offer_link_does_not_open_the_calendar(client: FlaskClient, la_visit: Visit) -> None:
    token = make_token(
        LinkPurpose.OFFER,
        la_visit.appointment.id,
        la_visit.patient.id,
        now_utc() + timedelta(days=1),
    )
    assert client.get(f"/a/{token}/calendar.ics").status_code == 404


def test_an_expired_link_is_gone(client: FlaskClient, la_visit: Visit) -> None:
    token = make_token(
        LinkPurpose.APPOINTMENT,
        la_visit.appointment.id,
        la_visit.patient.id,
        now_utc() - timedelta(minutes=1),
    )
    response = client.get(f"/a/{token}/calendar.ics")
    assert response.status_code == 410
    assert b"BEGIN:VCALENDAR" not in response.data


def test_the_page_offers_download_google_and_outlook(client: FlaskClient, la_visit: Visit) -> None:
    html = client.get(la_visit.path).get_data(as_text=True)

    assert f'href="/a/{la_visit.token}/calendar.ics"' in html
    assert 'href="https://calendar.google.com/calendar/render?action=TEMPLATE' in html
    assert 'href="https://outlook.live.com/calendar/0/action/compose?' in html
    assert html.count('target="_blank" rel="noopener"') == 2
    assert "<script>" not in html and "style=" not in html


def test_a_cancelled_booking_offers_only_the_updated_file(client: FlaskClient, app: object) -> None:
    visit = book_visit(LA, datetime(2027, 1, 12, 14, 30), status=AppointmentStatus.CANCELLED)

    html = client.get(visit.path).get_data(as_text=True)
    ics = client.get(f"{visit.path}/calendar.ics").data

    assert f'href="/a/{visit.token}/calendar.ics"' in html
    assert "calendar.google.com" not in html and "outlook.live.com" not in html
    assert b"STATUS:CANCELLED" in ics
