"""The day view and the slot panel: reading a local day, booking, releasing, holds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Charge, Notification, Offer, Slot
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    ChargeStatus,
    OfferStatus,
    Purpose,
    SlotStatus,
)
from portal.services import dayview, ledger, responses
from portal.services.audit import Actor
from tests import factories as f
from tests.conftest import csrf_token_from

LA = "America/Los_Angeles"
NY = "America/New_York"
HTMX = {"HX-Request": "true"}


def _local(day: date, hour: int, minute: int, tz: str = LA) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def _token(client: FlaskClient) -> str:
    return csrf_token_from(client.get("/staff/day").text)


def _open_slot_with_wave(**slot_kw: object) -> tuple[Slot, list[Offer]]:
    """An open slot two days out: wave 1 expired, wave 2 with two pending offers."""
    slot = f.slot(current_wave=2, **slot_kw)
    later = now_utc() + timedelta(minutes=25)
    f.offer(slot=slot, wave=1, status=OfferStatus.EXPIRED, window_expires_at=now_utc())
    offers = [
        f.offer(
            slot=slot,
            entry=f.waitlist_entry(patient=f.patient(name=name, phone_e164=phone), slot=slot),
            wave=2,
            score=score,
            score_reasons=reasons,
            window_expires_at=later,
        )
        for name, phone, score, reasons in [
            (
                "Nora Pending",
                "+13105550123",
                32,
                ["preferred practitioner (+20)", "staff priority (+10)"],
            ),
            ("Omar Pending", "+13105550456", 12, ["days on the waitlist (+12)"]),
        ]
    ]
    return slot, offers


def test_anonymous_request_is_sent_to_login(client: FlaskClient) -> None:
    response = client.get("/staff/day")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_day_view_lists_the_locations_local_day(signed_in: FlaskClient) -> None:
    la = f.location(name="Santa Monica", timezone=LA)
    f.location(name="Upper East Side", timezone="America/New_York")
    doctor = f.practitioner(name="Dr. Rivera", location=la)
    service = f.service(name="Botox touch-up", price_cents=45000)
    day = date(2026, 11, 24)
    late = f.slot(practitioner=doctor, service=service, start_at=_local(day, 23, 30), minutes=30)
    f.slot(practitioner=doctor, service=service, start_at=_local(day + timedelta(days=1), 0, 30))
    assert late.start_at.date() == date(2026, 11, 25)  # tomorrow in UTC

    html = signed_in.get(f"/staff/day?location={la.id}&date=2026-11-24").text
    assert "Tuesday, November 24, 2026" in html and "times in PST" in html
    assert "11:30 PM" in html and "12:00 AM" in html and "12:30 AM" not in html
    assert "Dr. Rivera" in html and "$450.00" in html and "Not started" in html
    assert f'href="/staff/day?location={la.id}&amp;date=2026-11-25"' in html  # next day
    assert f'hx-get="/staff/slots/{late.id}"' in html and f'href="/staff/slots/{late.id}"' in html


@pytest.mark.parametrize("query", ["location=999999&date=2026-11-24", "date=2026-13-45", "date=x"])
def test_day_view_survives_bad_parameters(signed_in: FlaskClient, query: str) -> None:
    f.location(name="Santa Monica", timezone=LA)
    response = signed_in.get(f"/staff/day?{query}")
    assert response.status_code == 200 and "showing" in response.text


def test_open_slot_shows_waves_offers_and_score_reasons(signed_in: FlaskClient) -> None:
    local_day = dayview.local_today(NY) + timedelta(days=1)
    slot, offers = _open_slot_with_wave(start_at=_local(local_day, 10, 0, NY))
    f.slot(
        practitioner=slot.practitioner,
        start_at=_local(local_day, 12, 0, NY),
        current_wave=3,
        fill_exhausted_at=now_utc(),
    )
    db.session.commit()

    day = signed_in.get(f"/staff/day?location={slot.location_id}&date={local_day}").text
    expires = offers[0].window_expires_at.astimezone(ZoneInfo(NY))
    assert "Wave 2 · 2 pending" in day and f"Expires {expires:%-I:%M %p}" in day
    assert "Nobody left to ask" in day and "After 3 waves" in day

    panel = signed_in.get(f"/staff/slots/{slot.id}").text
    assert panel.index("Nora Pending") < panel.index("Omar Pending")  # ranked by score
    assert "preferred practitioner (+20) · staff priority (+10)" in panel
    assert "+1•••••0123" in panel and "3105550123" not in panel
    assert "Wave 2" in panel and "Wave 1" in panel and "badge expired" in panel
    assert "Book for a patient" in panel


def test_staff_booking_withdraws_offers_and_tells_those_patients(signed_in: FlaskClient) -> None:
    slot, offers = _open_slot_with_wave()
    walk_in = f.patient(name="Walk In")
    db.session.commit()

    response = signed_in.post(
        f"/staff/slots/{slot.id}/book",
        data={"csrf_token": _token(signed_in), "patient_id": walk_in.id},
    )
    assert response.status_code == 303 and response.headers["Location"] == f"/staff/slots/{slot.id}"
    appointment = db.session.scalar(sa.select(Appointment).where(Appointment.slot_id == slot.id))
    assert appointment.patient_id == walk_in.id and appointment.source == AppointmentSource.STAFF
    assert {db.session.get(Offer, o.id).status for o in offers} == {OfferStatus.WITHDRAWN}
    told = db.session.scalars(
        sa.select(Notification.patient_id).where(Notification.purpose == Purpose.SLOT_FILLED)
    ).all()
    assert sorted(told) == sorted(o.patient_id for o in offers)
    assert "Booked Walk In" in signed_in.get(response.headers["Location"]).text


@pytest.mark.parametrize("htmx", [False, True])
def test_booking_a_taken_slot_says_so(signed_in: FlaskClient, htmx: bool) -> None:
    slot = f.slot(status=SlotStatus.BOOKED)
    f.appointment(slot=slot)
    other = f.patient()
    db.session.commit()

    response = signed_in.post(
        f"/staff/slots/{slot.id}/book",
        data={"csrf_token": _token(signed_in), "patient_id": other.id},
        headers=HTMX if htmx else {},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "This slot was just taken" in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1


def test_booking_without_a_patient_asks_for_one(signed_in: FlaskClient) -> None:
    slot = f.slot()
    db.session.commit()
    response = signed_in.post(
        f"/staff/slots/{slot.id}/book",
        data={"csrf_token": _token(signed_in), "patient_id": "nope"},
        follow_redirects=True,
    )
    assert "Choose a patient to book." in response.text


def test_release_reopens_the_slot_and_cancels_the_booking(signed_in: FlaskClient) -> None:
    slot = f.slot(status=SlotStatus.BOOKED)
    appointment = f.appointment(slot=slot)
    db.session.commit()

    response = signed_in.post(
        f"/staff/slots/{slot.id}/release", data={"csrf_token": _token(signed_in)}
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Slot, slot.id).status == SlotStatus.OPEN
    assert db.session.get(Appointment, appointment.id).status == AppointmentStatus.CANCELLED


def test_marking_the_deposit_collected_books_the_held_slot(signed_in: FlaskClient) -> None:
    slot = f.slot()
    patient = f.patient(name="Dee Posit", deposit_required=True)
    offer = f.offer(slot=slot, entry=f.waitlist_entry(patient=patient, slot=slot))
    outcome = responses.accept_offer(offer.id, actor=Actor.patient(patient.id))
    assert outcome.held
    db.session.commit()

    panel = signed_in.get(f"/staff/slots/{slot.id}").text
    assert "Held for payment" in panel and "$50.00 deposit" in panel
    response = signed_in.post(
        f"/staff/slots/{slot.id}/hold/complete",
        data={"csrf_token": _token(signed_in), "offer_id": offer.id},
        headers=HTMX,
    )
    assert "Payment recorded: Dee Posit is booked." in response.text
    db.session.expire_all()
    assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED
    charge = db.session.scalar(sa.select(Charge).where(Charge.offer_id == offer.id))
    assert ledger.status_of(charge.id) == ChargeStatus.SUCCEEDED


def test_restart_filling_clears_exhaustion_and_is_audited(signed_in: FlaskClient) -> None:
    slot = f.slot(current_wave=2, fill_exhausted_at=now_utc())
    db.session.commit()

    response = signed_in.post(
        f"/staff/slots/{slot.id}/restart-filling",
        data={"csrf_token": _token(signed_in)},
        follow_redirects=True,
    )
    assert "Filling restarted" in response.text
    db.session.expire_all()
    assert db.session.get(Slot, slot.id).fill_exhausted_at is None
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert "slot.filling_restarted" in actions


def test_posts_without_a_csrf_token_are_refused(signed_in: FlaskClient) -> None:
    slot = f.slot(status=SlotStatus.BOOKED)
    f.appointment(slot=slot)
    db.session.commit()
    assert signed_in.post(f"/staff/slots/{slot.id}/release").status_code == 400
    assert db.session.get(Slot, slot.id).status == SlotStatus.BOOKED


def test_htmx_gets_the_panel_or_the_day_row_without_the_page(signed_in: FlaskClient) -> None:
    slot, _ = _open_slot_with_wave()
    db.session.commit()

    panel = signed_in.get(f"/staff/slots/{slot.id}", headers=HTMX).text
    assert "<html" not in panel and f'id="slot-panel-{slot.id}"' in panel

    row = signed_in.get(
        f"/staff/slots/{slot.id}", headers=HTMX | {"HX-Target": f"slot-{slot.id}"}
    ).text
    assert row.lstrip().startswith(f'<tbody id="slot-{slot.id}">') and "Nora Pending" in row
    folded = signed_in.get(
        f"/staff/slots/{slot.id}?collapse=1", headers=HTMX | {"HX-Target": f"slot-{slot.id}"}
    ).text
    assert "<tbody" in folded and "Nora Pending" not in folded


def test_unknown_slot_is_a_404(signed_in: FlaskClient) -> None:
    assert signed_in.get("/staff/slots/424242").status_code == 404


def test_patient_search_matches_name_phone_and_email(signed_in: FlaskClient) -> None:
    maya = f.patient(name="Maya Lopez", phone_e164="+13105559876", email="maya@example.test")
    f.patient(name="Zed Other", email="zed@example.test")
    db.session.commit()

    for query in ("maya", "LOPEZ", "555 9876", "maya@ex"):
        html = signed_in.get("/staff/patients/search", query_string={"q": query}).text
        assert f'<option value="{maya.id}">Maya Lopez' in html and "Zed Other" not in html
    assert "Search for a patient first" in signed_in.get("/staff/patients/search?q=m").text


@pytest.mark.parametrize(
    "query", ["%", "0%", "%%", "'", "' OR 1=1 --", "_", "\\", "a" * 5000, "ab\x00cd"]
)
def test_patient_search_never_fails_on_odd_input(signed_in: FlaskClient, query: str) -> None:
    f.patient(name="100% Natural")
    db.session.commit()
    response = signed_in.get("/staff/patients/search", query_string={"q": query})
    assert response.status_code == 200 and "<option" in response.text
    if query == "0%":
        assert "100% Natural" in response.text  # a literal percent, not a wildcard
    if query == "%%":
        assert "No patients match" in response.text


def test_search_without_javascript_fills_the_picker_on_the_slot_page(
    signed_in: FlaskClient,
) -> None:
    slot = f.slot()
    f.patient(name="Maya Lopez")
    db.session.commit()
    html = signed_in.get(f"/staff/slots/{slot.id}?q=maya").text
    assert "Maya Lopez" in html and 'value="maya"' in html


def test_release_tells_the_patient_the_reason_staff_gave(signed_in: FlaskClient) -> None:
    slot = f.slot()
    f.appointment(slot=slot)
    db.session.commit()
    signed_in.post(
        f"/staff/slots/{slot.id}/release",
        data={"csrf_token": _token(signed_in), "reason": "Dr. Lee is unwell"},
    )
    told = db.session.scalar(
        sa.select(Notification).where(Notification.purpose == Purpose.CANCELLATION)
    )
    assert told.context == {"reason": "Dr. Lee is unwell"}


@pytest.mark.parametrize("htmx", [False, True])
def test_a_clash_is_shown_and_staff_may_book_anyway_with_a_reason(
    signed_in: FlaskClient, htmx: bool
) -> None:
    patient = f.patient(name="Dana Clash")
    first = f.slot()
    clashing = f.slot(start_at=first.start_at + timedelta(minutes=15))
    f.appointment(slot=first, patient=patient)
    db.session.commit()
    headers = {"HX-Request": "true"} if htmx else {}
    token = _token(signed_in)

    refused = signed_in.post(
        f"/staff/slots/{clashing.id}/book",
        data={"csrf_token": token, "patient_id": patient.id},
        headers=headers,
    )
    assert refused.status_code == 200
    assert "already has" in refused.text and "Book anyway" in refused.text
    db.session.expire_all()
    assert db.session.get(Slot, clashing.id).status == SlotStatus.OPEN

    signed_in.post(
        f"/staff/slots/{clashing.id}/book",
        data={"csrf_token": token, "patient_id": patient.id, "overlap_reason": "Back to back"},
        headers=headers,
    )
    db.session.expire_all()
    assert db.session.get(Slot, clashing.id).status == SlotStatus.BOOKED
    audit = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "appointment.overlap_allowed")
    )
    assert audit.after["reason"] == "Back to back"
