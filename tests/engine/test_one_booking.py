"""One want, one booking; no patient in two places at once; a release tells the patient."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.db import db, now_utc
from portal.models import Appointment, AuditEvent, Notification, Offer, Patient, Slot
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    OfferStatus,
    Purpose,
    WaitlistStatus,
)
from portal.services import booking, responses
from portal.services.audit import SYSTEM, Actor
from portal.services.notify.messages import render_message
from portal.services.release import release_slot
from tests import factories as f
from tests.races import assert_consistent, errors, race

pytestmark = pytest.mark.usefixtures("app")


def _two_offers_for_one_want(*, overlapping: bool = False) -> tuple[Offer, Offer]:
    """One patient, one waitlist entry, offered two slots of that service at once."""
    practitioner, service = f.practitioner(), f.service(duration_minutes=60)
    start = (now_utc() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    first = f.slot(start_at=start, practitioner=practitioner, service=service)
    second = f.slot(
        start_at=start + timedelta(minutes=30 if overlapping else 180),
        practitioner=f.practitioner(location=practitioner.location),
        service=service,
    )
    entry = f.waitlist_entry(slot=first)
    offers = f.offer(slot=first, entry=entry), f.offer(slot=second, entry=entry)
    db.session.commit()
    return offers


def _notifications(patient_id: int, purpose: Purpose) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification).where(
                Notification.patient_id == patient_id, Notification.purpose == purpose
            )
        )
    )


def test_booking_withdraws_the_patients_other_offers_for_that_want() -> None:
    first, second = _two_offers_for_one_want()
    responses.accept_offer(first.id, actor=Actor.patient(first.patient_id))
    db.session.commit()

    other = db.session.get(Offer, second.id)
    assert other.status == OfferStatus.WITHDRAWN
    assert other.withdrawn_reason == "patient_booked"
    # One message: the confirmation says the others were withdrawn; no "slot filled" text.
    assert _notifications(first.patient_id, Purpose.SLOT_FILLED) == []
    (confirmation,) = _notifications(first.patient_id, Purpose.CONFIRMATION)
    assert confirmation.context == {"withdrawn_offers": 1}

    with pytest.raises(booking.OfferUnavailable) as refused:
        responses.accept_offer(second.id, actor=Actor.patient(second.patient_id))
    assert refused.value.code == "offer_withdrawn" and refused.value.status == 409


def test_an_offer_whose_want_closed_cannot_be_accepted() -> None:
    first, second = _two_offers_for_one_want()
    db.session.get(Offer, first.id).waitlist_entry.status = WaitlistStatus.CANCELLED
    db.session.commit()
    with pytest.raises(booking.EntryClosed) as refused:
        responses.accept_offer(second.id, actor=Actor.patient(second.patient_id))
    assert refused.value.code == "offer_entry_closed" and refused.value.status == 409


def test_an_overlapping_offer_of_another_service_is_withdrawn_too() -> None:
    mine, _ = _two_offers_for_one_want()
    booked_slot = db.session.get(Slot, mine.slot_id)
    facial = f.slot(
        start_at=booked_slot.start_at + timedelta(minutes=15),
        practitioner=f.practitioner(location=booked_slot.location),
        service=f.service(category="facial"),
    )
    patient = db.session.get(Patient, mine.patient_id)
    clashing = f.offer(slot=facial, entry=f.waitlist_entry(patient=patient, slot=facial))
    db.session.commit()

    responses.accept_offer(mine.id, actor=SYSTEM)
    db.session.commit()

    assert db.session.get(Offer, clashing.id).status == OfferStatus.WITHDRAWN


def test_the_database_allows_one_active_booking_per_want() -> None:
    first, second = _two_offers_for_one_want()

    def book_directly(offer: Offer) -> None:
        f.appointment(
            slot=db.session.get(Slot, offer.slot_id),
            patient=db.session.get(Patient, offer.patient_id),
            waitlist_entry_id=offer.waitlist_entry_id,
        )

    book_directly(first)
    with pytest.raises(sa.exc.IntegrityError, match="uq_appointment_one_active_per_entry"):
        book_directly(second)
    db.session.rollback()


@pytest.mark.parametrize("overlapping", [False, True])
def test_one_patient_accepting_two_offers_at_once_books_one(app: Flask, overlapping: bool) -> None:
    for _ in range(10):
        first, second = _two_offers_for_one_want(overlapping=overlapping)

        def accept(offer_id: int) -> str:
            responses.accept_offer(offer_id, actor=SYSTEM)
            return "booked"

        calls = [lambda o=first.id: accept(o), lambda o=second.id: accept(o)]
        outcomes = race(app, calls, jitter=0.01)
        assert not errors(outcomes), outcomes
        assert outcomes["booked"] == 1, outcomes
        assert set(outcomes) <= {"booked", "offer_withdrawn", "offer_entry_closed"}
    assert_consistent()


# --- patient_busy ------------------------------------------------------------------


def _clashing_slots() -> tuple[Patient, Slot, Slot]:
    start = (now_utc() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    a = f.slot(start_at=start)
    b = f.slot(start_at=start + timedelta(minutes=30))
    return f.patient(), a, b


def test_a_patient_is_never_booked_into_overlapping_appointments() -> None:
    patient, a, b = _clashing_slots()
    first = booking.book_slot(a.id, patient, source=AppointmentSource.API, actor=SYSTEM)
    db.session.commit()
    with pytest.raises(booking.PatientBusy) as busy:
        booking.book_slot(b.id, patient, source=AppointmentSource.API, actor=SYSTEM)
    assert busy.value.code == "patient_busy" and busy.value.status == 409
    assert busy.value.details["appointment_id"] == first.id


def test_staff_may_book_over_a_clash_with_a_reason_which_is_audited() -> None:
    patient, a, b = _clashing_slots()
    staff = f.staff_user()
    booking.book_slot(a.id, patient, source=AppointmentSource.STAFF, actor=SYSTEM)
    second = booking.book_slot(
        b.id,
        patient,
        source=AppointmentSource.STAFF,
        actor=Actor.staff(staff),
        overlap_reason="two treatments in one visit",
    )
    db.session.commit()
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "appointment.overlap_allowed")
    )
    assert event.entity_id == second.id
    assert event.after["reason"] == "two treatments in one visit"
    assert event.actor_id == str(staff.id)


def test_only_staff_can_override_a_clash() -> None:
    patient, a, b = _clashing_slots()
    booking.book_slot(a.id, patient, source=AppointmentSource.API, actor=SYSTEM)
    with pytest.raises(booking.PatientBusy):
        booking.book_slot(
            b.id, patient, source=AppointmentSource.API, actor=SYSTEM, overlap_reason="because"
        )


def test_two_bookings_of_one_patient_into_clashing_slots_at_once(app: Flask) -> None:
    for _ in range(10):
        patient, a, b = _clashing_slots()
        db.session.commit()

        def book(slot_id: int, source: AppointmentSource, patient_id: int = patient.id) -> str:
            found = db.session.get(Patient, patient_id)
            booking.book_slot(slot_id, found, source=source, actor=SYSTEM)
            return "booked"

        outcomes = race(
            app,
            [
                lambda s=a.id: book(s, AppointmentSource.STAFF),
                lambda s=b.id: book(s, AppointmentSource.API),
            ],
            jitter=0.01,
        )
        assert outcomes == {"booked": 1, "patient_busy": 1}, outcomes
    assert_consistent()


# --- a release tells the patient ---------------------------------------------------


def test_releasing_a_booked_slot_tells_the_patient_why_and_cancels_the_calendar_entry() -> None:
    slot = f.slot()
    patient = f.patient()
    appointment = booking.book_slot(slot.id, patient, source=AppointmentSource.API, actor=SYSTEM)
    db.session.commit()

    release_slot(slot.id, SYSTEM, reason="the practitioner is unwell")
    db.session.commit()

    appointment = db.session.get(Appointment, appointment.id)
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.calendar_sequence == 1
    (notice,) = _notifications(patient.id, Purpose.CANCELLATION)
    text = render_message(notice, notice.attempts[0].channel).body
    assert "the practitioner is unwell" in text
    email = render_message(notice, "email")
    (ics,) = email.attachments
    assert ics.params["method"] == "CANCEL"
    assert b"METHOD:CANCEL" in ics.content and b"SEQUENCE:1" in ics.content


def test_a_loser_still_waiting_is_told_so_and_one_who_left_the_list_is_not() -> None:
    scene = f.broadcast_scene(4)
    winner, waiting, left, moved_on = scene.offers
    db.session.get(Offer, left.id).waitlist_entry.status = WaitlistStatus.CANCELLED
    booking.book_slot(
        scene.alternatives[0].id,
        db.session.get(Patient, moved_on.patient_id),
        source=AppointmentSource.STAFF,
        actor=SYSTEM,
    )
    db.session.commit()
    responses.accept_offer(winner.id, actor=SYSTEM)
    db.session.commit()

    def slot_filled_text(offer: Offer) -> str:
        (notice,) = _notifications(offer.patient_id, Purpose.SLOT_FILLED)
        return render_message(notice, "sms").body

    assert "still on the waitlist" in slot_filled_text(waiting)
    assert "still on the waitlist" not in slot_filled_text(left)
    # Booking elsewhere closed that patient's entry and withdrew this offer quietly.
    assert _notifications(moved_on.patient_id, Purpose.SLOT_FILLED) == []
