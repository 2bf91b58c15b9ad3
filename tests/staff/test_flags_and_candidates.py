"""Flags (review beside the history, notes, resolve) and an open slot's candidates and
manual offers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import AuditEvent, Notification, Offer, PatientFlag
from portal.models.enums import (
    AppointmentStatus,
    FlagKind,
    OfferStatus,
    Purpose,
    SlotStatus,
    WaitlistStatus,
)
from portal.services import manual_offers
from portal.services.audit import SYSTEM
from portal.services.errors import Conflict, DomainError
from portal.services.filling import advance
from tests import factories as f
from tests.staff import ops_factories as ops
from tests.staff.conftest import HTMX, form_token

# --- flags ---------------------------------------------------------------------------


def test_flags_list_by_kind_and_resolved(signed_in: FlaskClient) -> None:
    ops.flag(FlagKind.NO_SHOW, patient=f.patient(name="Nell Noshow"))
    ops.flag(FlagKind.UNREACHABLE, patient=f.patient(name="Una Reach"))
    ops.flag(
        FlagKind.INVALID_PHONE,
        patient=f.patient(name="Old Done"),
        resolved_at=now_utc(),
        resolution_notes="fixed",
    )
    db.session.commit()
    html = signed_in.get("/staff/flags").text
    assert "Nell Noshow" in html and "Una Reach" in html and "Old Done" not in html
    only = signed_in.get("/staff/flags?kind=unreachable").text
    assert "Una Reach" in only and "Nell Noshow" not in only
    done = signed_in.get("/staff/flags?show=resolved").text
    assert "Old Done" in done and "fixed" in done
    assert (
        "No open flags of this kind"
        in signed_in.get("/staff/flags?kind=frequent_cancellations").text
    )


def test_review_shows_the_history_beside_and_notes_and_resolve_are_audited(
    signed_in: FlaskClient,
) -> None:
    patient = f.patient(name="Hana History")
    for status in (
        AppointmentStatus.NO_SHOW,
        AppointmentStatus.NO_SHOW,
        AppointmentStatus.CANCELLED,
    ):
        f.appointment(
            slot=f.slot(start_at=now_utc() - timedelta(days=10)), patient=patient, status=status
        )
    flag = ops.flag(FlagKind.NO_SHOW, patient=patient, notes="Second no-show this month")
    db.session.commit()
    page = signed_in.get(f"/staff/flags/{flag.id}").text
    assert "Hana's history" in page
    figures = page.split('class="figures"')[1].split("</div>\n      </div>")[0]
    assert "<strong>2</strong><span>no-shows</span>" in figures
    token = form_token(signed_in, f"/staff/flags/{flag.id}")

    noted = signed_in.post(
        f"/staff/flags/{flag.id}/note",
        data={"csrf_token": token, "note": "Called; will pay a deposit"},
        headers=HTMX,
    )
    assert noted.status_code == 200 and noted.text.lstrip().startswith('<section id="flag-thread"')
    assert "Called; will pay a deposit" in noted.text and "Note added." in noted.text

    empty = signed_in.post(
        f"/staff/flags/{flag.id}/resolve", data={"csrf_token": token, "notes": " "}, headers=HTMX
    )
    assert "Say how the flag was dealt with." in empty.text
    signed_in.post(
        f"/staff/flags/{flag.id}/resolve",
        data={"csrf_token": token, "notes": "Deposit from now on"},
    )
    db.session.expire_all()
    resolved = db.session.get(PatientFlag, flag.id)
    assert resolved.resolved_at is not None and resolved.resolution_notes == "Deposit from now on"
    again = signed_in.post(
        f"/staff/flags/{flag.id}/resolve",
        data={"csrf_token": token, "notes": "x"},
        follow_redirects=True,
    )
    assert "This flag is already resolved." in again.text
    actions = [
        e.action
        for e in db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.entity_type == "patient_flag")
            .order_by(AuditEvent.id)
        )
    ]
    assert actions == ["patient.flag_annotated", "patient.flag_resolved"]


def test_flag_review_offers_the_tier_change(signed_in: FlaskClient) -> None:
    flag = ops.flag(FlagKind.NO_SHOW)
    db.session.commit()
    page = signed_in.get(f"/staff/flags/{flag.id}").text
    assert "Payment before booking" in page and 'name="reason"' in page


# --- candidates and manual offers ------------------------------------------------------


def _slot_with_waiting() -> tuple[object, dict[str, object]]:
    slot = f.slot(start_at=(now_utc() + timedelta(days=2)).replace(second=0, microsecond=0))
    entries = {
        "fits": f.waitlist_entry(patient=f.patient(name="Fay Fits"), slot=slot, priority=2),
        "hours": f.waitlist_entry(
            patient=f.patient(name="Hal Hours"),
            slot=slot,
            windows=[
                {"weekday": (slot.start_at.weekday() + 3) % 7, "start": "09:00", "end": "10:00"}
            ],
        ),
        "optout": f.waitlist_entry(
            patient=f.patient(name="Ola Optout", sms_opt_out=True, email=None), slot=slot
        ),
        "paused": f.waitlist_entry(
            patient=f.patient(name="Pia Paused"), slot=slot, status=WaitlistStatus.PAUSED
        ),
    }
    db.session.commit()
    return slot, entries


def test_candidates_show_ranking_reasons_and_why_the_others_not(signed_in: FlaskClient) -> None:
    slot, _entries = _slot_with_waiting()
    html = signed_in.get(f"/staff/slots/{slot.id}/candidates").text
    ranked, left = html.split("Left out", 1)
    assert "Fay Fits" in ranked and "staff priority (+20)" in ranked
    assert "Hal Hours" in left and "Outside the hours they gave" in left
    assert "Ola Optout" in left and "Opted out of texts and calls, and no email" in left
    assert "Pia Paused" not in html  # paused entries are not waiting


def test_offer_now_goes_through_the_offer_engine(signed_in: FlaskClient) -> None:
    slot, entries = _slot_with_waiting()
    token = form_token(signed_in, f"/staff/slots/{slot.id}/candidates")
    response = signed_in.post(
        f"/staff/slots/{slot.id}/offer",
        data={"csrf_token": token, "entry_id": entries["hours"].id},
        follow_redirects=True,
    )
    assert "Offered to Hal Hours: they have until" in response.text
    offer = db.session.scalar(sa.select(Offer))
    assert offer.score_reasons == ["offered by staff"] and offer.status == OfferStatus.PENDING
    assert (
        db.session.scalar(sa.select(Notification.purpose).where(Notification.offer_id == offer.id))
        == Purpose.OFFER
    )
    again = signed_in.post(
        f"/staff/slots/{slot.id}/offer",
        data={"csrf_token": token, "entry_id": entries["hours"].id},
        follow_redirects=True,
    )
    assert "Hal Hours was already offered this slot (pending)." in again.text


def test_offer_now_refuses_what_would_be_wrong(app: Flask) -> None:
    slot, entries = _slot_with_waiting()
    other = f.slot()
    elsewhere = f.waitlist_entry(slot=other)
    cases = [(entries["paused"].id, "entry_not_active"), (elsewhere.id, "entry_mismatch")]
    for entry_id, code in cases:
        with pytest.raises(DomainError) as refused:
            manual_offers.offer_now(slot.id, entry_id, SYSTEM)
        assert refused.value.code == code
    busy_patient = entries["fits"].patient
    clash = f.slot(
        start_at=slot.start_at, practitioner=f.practitioner(location_id=slot.location_id)
    )
    f.appointment(slot=clash, patient=busy_patient)
    with pytest.raises(Conflict) as busy:
        manual_offers.offer_now(slot.id, entries["fits"].id, SYSTEM)
    assert busy.value.code == "patient_busy"
    closes = f.slot(
        start_at=slot.start_at, practitioner=f.practitioner(location_id=slot.location_id)
    )
    closes.status = SlotStatus.BOOKED
    with pytest.raises(Conflict, match="only an open slot can be offered"):
        manual_offers.offer_now(closes.id, entries["hours"].id, SYSTEM)


def test_a_manual_offer_joins_the_live_wave(app: Flask) -> None:
    slot, entries = _slot_with_waiting()
    wave = advance(slot.id)
    assert [o.patient.name for o in wave.offers] == ["Fay Fits"]
    made = manual_offers.offer_now(slot.id, entries["hours"].id, SYSTEM)
    assert made.wave == wave.wave
