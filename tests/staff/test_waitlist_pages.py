"""The waitlist pages: filters, the entry form and its availability editor, pause/remove."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import AuditEvent, Notification, Offer, WaitlistEntry
from portal.models.enums import OfferStatus, Purpose, WaitlistStatus
from portal.services import waitlist_staff
from portal.services.audit import SYSTEM
from portal.services.filling import advance
from portal.services.responses import accept_offer
from tests import factories as f
from tests.races import assert_consistent, race
from tests.staff.conftest import HTMX, form_token


def _form(client: FlaskClient, patient_id: int, **data: object) -> object:
    token = form_token(client, "/staff/waitlist")
    body = {"csrf_token": token, "patient_id": patient_id, "priority": "0", **data}
    return client.post("/staff/waitlist/new", data=body)


def test_waitlist_needs_a_signed_in_user(client: FlaskClient) -> None:
    assert client.get("/staff/waitlist").status_code == 302


def test_list_filters_by_service_location_status_patient_and_priority(
    signed_in: FlaskClient,
) -> None:
    botox, laser = f.service(name="Botox"), f.service(name="Laser")
    uptown, downtown = f.location(name="Uptown"), f.location(name="Downtown")
    f.waitlist_entry(
        patient=f.patient(name="Ana Botox"), service_id=botox.id, location_id=uptown.id, priority=2
    )
    f.waitlist_entry(
        patient=f.patient(name="Ben Laser"), service_id=laser.id, location_id=downtown.id
    )
    f.waitlist_entry(
        patient=f.patient(name="Cy Paused"),
        service_id=botox.id,
        location_id=uptown.id,
        status=WaitlistStatus.PAUSED,
    )
    db.session.commit()

    def names(query: str) -> list[str]:
        html = signed_in.get(f"/staff/waitlist?{query}").text
        return [n for n in ("Ana Botox", "Ben Laser", "Cy Paused") if n in html]

    assert names("") == ["Ana Botox", "Ben Laser"]  # active by default
    assert names(f"service={botox.id}") == ["Ana Botox"]
    assert names(f"location={downtown.id}") == ["Ben Laser"]
    assert names("status=paused") == ["Cy Paused"]
    assert names("status=any&patient=laser") == ["Ben Laser"]
    assert names("priority=raised") == ["Ana Botox"]
    assert "No entries match these filters" in signed_in.get("/staff/waitlist?patient=zzz").text


def test_empty_waitlist_says_what_to_do(signed_in: FlaskClient) -> None:
    assert "Use “Add to the waitlist”" in signed_in.get("/staff/waitlist").text


def test_adding_with_hours_saves_windows_in_the_patients_zone(signed_in: FlaskClient) -> None:
    ny = f.location(name="Upper East Side", timezone="America/New_York")
    service = f.service(name="Hydrafacial")
    patient = f.patient(name="Lia West", timezone="America/Los_Angeles", home_location_id=ny.id)
    db.session.commit()
    page = signed_in.get(f"/staff/waitlist/new?patient_id={patient.id}").text
    assert "America/Los_Angeles" in page and 'name="w0_0_start"' in page
    response = _form(
        signed_in,
        patient.id,
        service_id=service.id,
        location_id=ny.id,
        w0_0_start="09:00",
        w0_0_end="12:00",
        w4_1_start="17:00",
        w4_1_end="19:30",
        earliest=date.today().isoformat(),
        short_notice_ok="y",
        priority="3",
    )
    assert response.status_code == 303
    entry = db.session.scalar(sa.select(WaitlistEntry))
    assert entry.windows == [
        {"weekday": 0, "start": "09:00", "end": "12:00"},
        {"weekday": 4, "start": "17:00", "end": "19:30"},
    ]
    assert (entry.priority, entry.short_notice_ok) == (3, True)
    edit = signed_in.get(f"/staff/waitlist/{entry.id}/edit").text
    assert 'value="09:00"' in edit
    assert "Monday 12:00 PM – 3:00 PM E" in edit  # the clinic's reading of the same hours


def test_joining_twice_edits_the_existing_entry(signed_in: FlaskClient) -> None:
    slot = f.slot()
    patient = f.patient(name="Twice Tia")
    db.session.commit()
    for priority in ("1", "5"):
        _form(
            signed_in,
            patient.id,
            service_id=slot.service_id,
            location_id=slot.location_id,
            priority=priority,
        )
    entries = db.session.scalars(sa.select(WaitlistEntry)).all()
    assert len(entries) == 1 and entries[0].priority == 5
    page = signed_in.get(f"/staff/patients/{patient.id}").text
    assert "was already waiting for" in page and "their entry was updated" in page


def test_adding_again_while_paused_edits_the_paused_entry(app: Flask) -> None:
    slot = f.slot()
    patient = f.patient()
    paused = f.waitlist_entry(patient=patient, slot=slot, status=WaitlistStatus.PAUSED)
    entry, created = waitlist_staff.save_entry(
        patient, slot.service, slot.location, waitlist_staff.Preferences(priority=4), SYSTEM
    )
    assert (entry.id, created, entry.priority, entry.status) == (
        paused.id,
        False,
        4,
        WaitlistStatus.PAUSED,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"w2_0_start": "10:00"}, "Wednesday: give both a from and a to time"),
        (
            {"w2_0_start": "12:00", "w2_0_end": "10:00"},
            "Wednesday: the time range must end after it starts",
        ),
        ({"earliest": "2031-05-02", "latest": "2031-05-01"}, "earliest must not be after latest"),
        ({"priority": "99999"}, "Number must be between -1000 and 1000"),
        ({"earliest": "not-a-date"}, "Not a valid date value"),
        ({"service_id": ""}, "Choose a service."),
    ],
)
def test_bad_input_gets_a_message_on_the_form(
    signed_in: FlaskClient, data: dict[str, str], message: str
) -> None:
    slot = f.slot()
    patient = f.patient()
    db.session.commit()
    fields = {"service_id": slot.service_id, "location_id": slot.location_id} | data
    response = _form(signed_in, patient.id, **fields)
    assert response.status_code == 422
    assert message in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WaitlistEntry)) == 0


def test_without_csrf_nothing_is_added(signed_in: FlaskClient) -> None:
    slot, patient = f.slot(), f.patient()
    db.session.commit()
    response = signed_in.post(
        "/staff/waitlist/new",
        data={
            "patient_id": patient.id,
            "service_id": slot.service_id,
            "location_id": slot.location_id,
        },
    )
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WaitlistEntry)) == 0


def _offered_entry() -> tuple[WaitlistEntry, Offer]:
    slot = f.slot(start_at=(now_utc() + timedelta(days=1)).replace(second=0, microsecond=0))
    entry = f.waitlist_entry(slot=slot)
    offer = advance(slot.id).offers[0]
    db.session.commit()
    return entry, offer


def test_pausing_withdraws_pending_offers_and_tells_nobody(signed_in: FlaskClient) -> None:
    entry, offer = _offered_entry()
    token = form_token(signed_in, "/staff/waitlist")
    response = signed_in.post(
        f"/staff/waitlist/{entry.id}/pause", data={"csrf_token": token}, headers=HTMX
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tbody id="entry-{entry.id}">')
    assert "1 pending offer withdrawn" in response.text and "Paused" in response.text
    db.session.expire_all()
    assert db.session.get(Offer, offer.id).status == OfferStatus.WITHDRAWN
    assert db.session.get(Offer, offer.id).withdrawn_reason == "entry_paused"
    purposes = set(db.session.scalars(sa.select(Notification.purpose)))
    assert purposes == {Purpose.OFFER}  # no "slot was taken" message to anyone
    assert {"waitlist.paused", "offer.withdrawn"} <= set(
        db.session.scalars(sa.select(AuditEvent.action))
    )


def test_remove_and_resume_without_javascript_redirect_back(signed_in: FlaskClient) -> None:
    entry = f.waitlist_entry(status=WaitlistStatus.PAUSED)
    db.session.commit()
    token = form_token(signed_in, "/staff/waitlist")
    response = signed_in.post(f"/staff/waitlist/{entry.id}/resume", data={"csrf_token": token})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, entry.id).status == WaitlistStatus.ACTIVE
    signed_in.post(f"/staff/waitlist/{entry.id}/remove", data={"csrf_token": token})
    db.session.expire_all()
    removed = db.session.get(WaitlistEntry, entry.id)
    assert removed.status == WaitlistStatus.CANCELLED and removed.closed_at is not None
    again = signed_in.post(
        f"/staff/waitlist/{entry.id}/pause", data={"csrf_token": token}, follow_redirects=True
    )
    assert "This entry is cancelled now; nothing was changed." in again.text


def test_resuming_beside_an_active_entry_is_refused_with_a_message(app: Flask) -> None:
    slot, patient = f.slot(), f.patient()
    f.waitlist_entry(patient=patient, slot=slot)
    paused = f.waitlist_entry(patient=patient, slot=slot, status=WaitlistStatus.PAUSED)
    with pytest.raises(Exception, match="already waits for this service here"):
        waitlist_staff.resume_entry(paused.id, SYSTEM)


def test_pause_racing_an_accept_leaves_one_consistent_outcome(app: Flask) -> None:
    for _ in range(6):
        entry, offer = _offered_entry()
        entry_id, offer_id = entry.id, offer.id  # plain ids: the threads use their own sessions
        outcomes = race(
            app,
            [
                lambda e=entry_id: "paused" if waitlist_staff.pause_entry(e, SYSTEM) else "",
                lambda o=offer_id: "accepted" if accept_offer(o, actor=SYSTEM) else "",
            ],
            jitter=0.01,
        )
        assert_consistent()
        db.session.expire_all()
        status = db.session.get(Offer, offer_id).status
        if outcomes["accepted"]:
            assert status == OfferStatus.ACCEPTED and outcomes["entry_changed"] == 1, outcomes
        else:
            assert status == OfferStatus.WITHDRAWN and outcomes["paused"] == 1, outcomes
