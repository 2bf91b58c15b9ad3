"""Booking a slot: the one atomic path every booking takes (SPEC §3.4–3.8).

Accepting an offer, booking an alternative, staff and API bookings all end in
``book_slot``: a conditional ``UPDATE slot … WHERE status = 'open'`` (under READ
COMMITTED a blocked loser re-checks the condition after the winner commits and finds
it false), the appointment insert guarded by the partial unique index, and the
withdrawal of every other pending offer. No lock is held across a network call: the
messages are outbox rows and jobs are enqueued after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Charge, Offer, Patient, Slot, WaitlistEntry
from portal.models.enums import (
    INACTIVE_APPOINTMENT_STATUSES,
    ActorType,
    AppointmentSource,
    AppointmentStatus,
    OfferStatus,
    Purpose,
    SlotStatus,
    WaitlistStatus,
)
from portal.queue import schedule
from portal.services import presentation
from portal.services.audit import Action, Actor, record, record_each, snapshot
from portal.services.errors import Conflict, DomainError, NotFound
from portal.services.notify import Message, queue_notification, queue_notifications
from portal.services.offers import update_offers
from portal.services.reminders import plan_reminders

log = logging.getLogger(__name__)


class SlotTaken(Conflict):
    default_code = "slot_filled"
    default_message = "This slot was just taken by someone else."


class SlotHeld(Conflict):
    default_code = "slot_held"
    default_message = "Someone is completing a booking for this slot right now."


class SlotNotBookable(Conflict):
    default_code = "slot_not_bookable"
    default_message = "This slot cannot be booked."


class PatientBusy(Conflict):
    """The patient already has an active appointment overlapping this slot."""

    default_code = "patient_busy"

    def __init__(self, clash: Appointment) -> None:
        slot = clash.slot
        when = presentation.when(slot.start_at, slot.location.timezone)
        super().__init__(
            f"This patient already has {slot.service.name} booked at {when}.",
            details={
                "appointment_id": clash.id,
                "slot_id": slot.id,
                "start_at": slot.start_at.isoformat(),
                "end_at": slot.end_at.isoformat(),
            },
        )
        self.clash = clash


class EntryClosed(Conflict):
    """The waitlist entry behind an offer is no longer active (booked, paused, removed)."""

    default_code = "offer_entry_closed"
    default_message = "This offer no longer applies: that waitlist request is closed."


class OfferUnavailable(DomainError):
    """The offer can no longer be answered; ``code`` says why (offer_expired, …)."""

    default_status = 409

    def __init__(self, status: OfferStatus) -> None:
        super().__init__(f"This offer is {status.value}.", code=f"offer_{status.value}", details={})
        self.offer_status = status


@dataclass
class AcceptOutcome:
    """An accepted offer: booked outright, or held pending a deposit/prepayment."""

    offer: Offer
    appointment: Appointment | None = None
    charge: Charge | None = None

    @property
    def held(self) -> bool:
        return self.appointment is None


def book_slot(
    slot_id: int,
    patient: Patient,
    *,
    source: AppointmentSource,
    actor: Actor,
    now: datetime | None = None,
    offer: Offer | None = None,
    from_status: SlotStatus = SlotStatus.OPEN,
    overlap_reason: str | None = None,
    moving: Appointment | None = None,
) -> Appointment:
    """Book ``slot_id`` for ``patient`` or raise a ``Conflict`` (the caller rolls back).

    ``moving``: an existing appointment of the patient's moves into the slot (a
    reschedule) instead of a new one being made; the caller releases its old slot in
    the same transaction (``services.reschedule``).

    Locks, always in this order: the slot row (the conditional update every loser
    queues on), the patient row (so one patient's bookings are made one at a time and
    the overlap check sees the other), then offers in id order (``update_offers``).
    Staff may book over a clash on purpose by giving ``overlap_reason`` (audited).
    """
    now = now or now_utc()
    guard = [Slot.id == slot_id, Slot.status == from_status]
    if from_status == SlotStatus.HELD:
        guard.append(Slot.hold_offer_id == (offer.id if offer else None))
    slot = updated_row(
        sa.update(Slot)
        .where(*guard)
        .values(status=SlotStatus.BOOKED, hold_offer_id=None, hold_expires_at=None, updated_at=now)
        .returning(Slot)
    )
    if slot is None:
        raise_for_current_state(slot_id, offer)
    lock_patient(patient.id)
    if offer is not None:  # an answered or closed offer says so before any clash does
        _check_entry_active(offer.waitlist_entry_id)
        _mark_accepted(offer, now, within_window=from_status == SlotStatus.OPEN)
    clash = clashing_appointment(patient.id, slot, ignoring=moving.id if moving else None)
    if clash is not None and not (overlap_reason and actor.staff_id):
        raise PatientBusy(clash)
    if moving is not None:
        return _move_into(moving, slot, patient, actor, now)
    appointment = Appointment(
        slot_id=slot_id,
        patient_id=patient.id,
        source=source,
        status=(
            AppointmentStatus.CONFIRMED
            if source in (AppointmentSource.WAITLIST, AppointmentSource.ALTERNATIVE)
            else AppointmentStatus.BOOKED
        ),
        booked_at=now,
        confirmed_at=now if source != AppointmentSource.STAFF else None,
        offer_id=offer.id if offer else None,
        waitlist_entry_id=_entry_for(patient.id, slot, offer),
        booked_by_staff_id=actor.staff_id,
    )
    db.session.add(appointment)
    db.session.flush()  # the partial unique indexes are the last line of defence
    record(
        actor, Action.SLOT_BOOKED, slot, after={"status": "booked", "appointment": appointment.id}
    )
    record(actor, Action.APPOINTMENT_CREATED, appointment, after=snapshot(appointment, "source"))
    if clash is not None:
        record(
            actor,
            Action.APPOINTMENT_OVERLAP_ALLOWED,
            appointment,
            after={"overlaps": clash.id, "reason": overlap_reason},
        )
    if offer is not None:
        record(actor, Action.OFFER_ACCEPTED, offer, after={"appointment": appointment.id})
    closed_entries = close_waitlist_entries(patient.id, slot.service_id, actor, now)
    own = withdraw_pending_offers(
        slot,
        actor,
        now,
        keep_offer_id=offer.id if offer else None,
        booked_by=(patient.id, closed_entries),
    )
    queue_notification(
        patient,
        Purpose.CONFIRMATION,
        f"confirmation:{appointment.id}",
        appointment_id=appointment.id,
        context={"withdrawn_offers": len(own)} if own else None,
    )
    plan_reminders(appointment, now, confirmation_sent=True, actor=actor)
    return appointment


def _move_into(
    appointment: Appointment, slot: Slot, patient: Patient, actor: Actor, now: datetime
) -> Appointment:
    """Move ``appointment`` into the freshly booked ``slot`` (the rest of ``book_slot``).

    The calendar entry keeps its UID and goes up a SEQUENCE; the patient is told with
    an updated calendar file; reminders are replanned for the new time. A move the
    patient makes counts as their confirmation of the new time.
    """
    before = {"slot_id": appointment.slot_id, "start_at": appointment.slot.start_at}
    appointment.slot = slot
    appointment.calendar_sequence += 1
    if actor.type == ActorType.PATIENT:
        appointment.status = AppointmentStatus.CONFIRMED
        appointment.confirmed_at = now
    db.session.flush()
    record(
        actor, Action.SLOT_BOOKED, slot, after={"status": "booked", "appointment": appointment.id}
    )
    record(
        actor,
        Action.APPOINTMENT_RESCHEDULED,
        appointment,
        before=before,
        after={"slot_id": slot.id, "start_at": slot.start_at, "status": appointment.status},
    )
    closed_entries = close_waitlist_entries(patient.id, slot.service_id, actor, now)
    withdraw_pending_offers(slot, actor, now, booked_by=(patient.id, closed_entries))
    queue_notification(
        patient,
        Purpose.CONFIRMATION,
        f"moved:{appointment.id}:{appointment.calendar_sequence}",
        appointment_id=appointment.id,
        context={"moved_from": before["start_at"].isoformat()},
        now=now,
    )
    plan_reminders(appointment, now, confirmation_sent=True, actor=actor)
    return appointment


def lock_patient(patient_id: int) -> None:
    """Serialise this patient's bookings, so each sees the one before it.

    FOR NO KEY UPDATE: inserts that merely reference the patient (offers, notifications
    take a key-share lock) are not blocked by it.
    """
    db.session.execute(
        sa.select(Patient.id).where(Patient.id == patient_id).with_for_update(key_share=True)
    )


def clashing_appointment(
    patient_id: int, slot: Slot, *, ignoring: int | None = None
) -> Appointment | None:
    """Return an active appointment of the patient's that overlaps ``slot``, if any
    (``ignoring`` one: the appointment being moved cannot clash with itself)."""
    return db.session.scalars(
        sa.select(Appointment)
        .join(Slot, Slot.id == Appointment.slot_id)
        .where(
            Appointment.patient_id == patient_id,
            Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
            Slot.id != slot.id,
            Appointment.id != (ignoring or 0),
            Slot.start_at < slot.end_at,
            Slot.end_at > slot.start_at,
        )
        .order_by(Slot.start_at)
        .limit(1)
    ).first()


def _check_entry_active(entry_id: int) -> None:
    """Refuse an offer whose waitlist entry closed (read after the patient lock: current)."""
    status = db.session.scalar(sa.select(WaitlistEntry.status).where(WaitlistEntry.id == entry_id))
    if status != WaitlistStatus.ACTIVE:
        raise EntryClosed()


def _mark_accepted(offer: Offer, now: datetime, *, within_window: bool) -> None:
    """Mark the offer accepted if it is still answerable (after the slot is won).

    Lock order matters: the slot row first, then offer rows, everywhere. A loser blocks
    on the slot and never touches its own offer, so the winner can withdraw it.
    """
    guard = [Offer.id == offer.id, Offer.status == OfferStatus.PENDING]
    if within_window:
        guard.append(Offer.window_expires_at > now)
    marked = updated_row(
        sa.update(Offer)
        .where(*guard)
        .values(status=OfferStatus.ACCEPTED, responded_at=now, updated_at=now)
        .returning(Offer)
    )
    if marked is None:
        db.session.refresh(offer)
        check_answerable(offer, now)
        raise OfferUnavailable(offer.status)


def updated_row(statement: sa.Update) -> Any:
    """Run a conditional ``UPDATE … RETURNING`` entity; None if the condition failed.

    The returned object is the session's own, refreshed with the new values, so the
    winner's path costs one statement rather than an update plus a re-read.
    """
    return db.session.scalars(
        statement.execution_options(populate_existing=True, synchronize_session=False)
    ).one_or_none()


def raise_for_current_state(slot_id: int, offer: Offer | None = None) -> None:
    """Raise what a booking that found the slot not bookable should answer.

    A second tap on an offer that this very offer already won says so
    (``offer_accepted``) rather than "just taken by someone else".
    """
    if offer is not None:
        db.session.refresh(offer)
        if offer.status == OfferStatus.ACCEPTED:
            raise OfferUnavailable(offer.status)
    status = db.session.scalar(sa.select(Slot.status).where(Slot.id == slot_id))
    if status is None:
        raise NotFound("No such slot.", code="unknown_slot")
    if status == SlotStatus.HELD:
        raise SlotHeld()
    if status == SlotStatus.CLOSED:
        raise SlotNotBookable("This slot is closed.")
    raise SlotTaken()


def _entry_for(patient_id: int, slot: Slot, offer: Offer | None) -> int | None:
    if offer is not None:
        return offer.waitlist_entry_id
    return db.session.scalar(
        sa.select(WaitlistEntry.id).where(
            WaitlistEntry.patient_id == patient_id,
            WaitlistEntry.service_id == slot.service_id,
            WaitlistEntry.location_id == slot.location_id,
            WaitlistEntry.status == WaitlistStatus.ACTIVE,
        )
    )


def withdraw_pending_offers(
    slot: Slot,
    actor: Actor,
    now: datetime,
    *,
    keep_offer_id: int | None = None,
    booked_by: tuple[int, list[int]] | None = None,
) -> list[Offer]:
    """Withdraw the slot's other pending offers and tell those patients it was filled.

    With ``booked_by=(patient_id, closed_entry_ids)`` the booking patient's own pending
    offers for those entries or for overlapping times go too, in the same statement;
    they are returned (the confirmation mentions them) and get no message of their own.
    """
    others = Offer.slot_id == slot.id
    if booked_by is not None:
        patient_id, entry_ids = booked_by
        overlapping = sa.select(Slot.id).where(
            Slot.start_at < slot.end_at, Slot.end_at > slot.start_at
        )
        others = sa.or_(
            others,
            sa.and_(
                Offer.patient_id == patient_id,
                sa.or_(Offer.waitlist_entry_id.in_(entry_ids), Offer.slot_id.in_(overlapping)),
            ),
        )
    withdrawn = update_offers(
        sa.and_(others, Offer.status == OfferStatus.PENDING, Offer.id != (keep_offer_id or 0)),
        status=OfferStatus.WITHDRAWN,
        withdrawn_reason=sa.case((Offer.slot_id == slot.id, "slot_filled"), else_="patient_booked"),
        updated_at=now,
    )
    told = [o for o in withdrawn if o.slot_id == slot.id]
    # One query for every patient told (a broadcast wave may withdraw hundreds).
    patients = {
        p.id: p
        for p in db.session.scalars(
            sa.select(Patient).where(Patient.id.in_([o.patient_id for o in told]))
        )
    }
    record_each(
        actor, Action.OFFER_WITHDRAWN, withdrawn, after=lambda o: {"reason": o.withdrawn_reason}
    )
    _end_holds_of([o.id for o in withdrawn if o.slot_id != slot.id])
    queue_notifications(
        [
            Message(patients[o.patient_id], f"slot_filled:{o.id}", offer_id=o.id)
            for o in sorted(told, key=lambda o: o.id)
        ],
        Purpose.SLOT_FILLED,
        now=now,
    )
    return [o for o in withdrawn if o.slot_id != slot.id]


def close_waitlist_entries(
    patient_id: int, service_id: int, actor: Actor, now: datetime
) -> list[int]:
    """A patient who booked a service leaves every active waitlist entry for it (§3.7)."""
    closed = db.session.scalars(
        sa.update(WaitlistEntry)
        .where(
            WaitlistEntry.patient_id == patient_id,
            WaitlistEntry.service_id == service_id,
            WaitlistEntry.status == WaitlistStatus.ACTIVE,
        )
        .values(status=WaitlistStatus.BOOKED, closed_at=now, updated_at=now)
        .returning(WaitlistEntry)
        .execution_options(populate_existing=True, synchronize_session=False)
    ).all()
    for entry in closed:
        record(actor, Action.WAITLIST_CLOSED, entry, after={"why": "booked"})
    return [entry.id for entry in closed]


def get_offer(offer_id: int) -> Offer:
    offer = db.session.get(Offer, offer_id)
    if offer is None:
        raise NotFound("No such offer.", code="unknown_offer")
    return offer


def check_answerable(offer: Offer, now: datetime) -> None:
    if offer.status == OfferStatus.PENDING and now >= offer.window_expires_at:
        raise OfferUnavailable(OfferStatus.EXPIRED)
    if offer.status != OfferStatus.PENDING:
        raise OfferUnavailable(offer.status)


#: Constraints whose violation means another request won a race, and what to answer.
_RACE_CONSTRAINTS: dict[str, type[Conflict]] = {
    "uq_appointment_one_active_per_slot": SlotTaken,
    "uq_appointment_one_per_offer": SlotTaken,
    "slot_booking_consistent": SlotTaken,
    "uq_appointment_one_active_per_entry": EntryClosed,
}
#: Deadlock and serialization failures: PostgreSQL aborted us to let another go first.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def lost_race(exc: sa.exc.DBAPIError) -> Conflict | None:
    """Return the conflict a database error means when a concurrent request won, else None.

    The one place that turns a unique violation, the booking-consistency check, a
    deadlock or a serialization failure into what the patient, staff or API is told.
    """
    orig = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    if constraint in _RACE_CONSTRAINTS:
        return _RACE_CONSTRAINTS[constraint]()
    if getattr(orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return Conflict(
            "Someone else changed this at the same moment; please try again.", code="busy_retry"
        )
    return None


def _end_holds_of(offer_ids: list[int]) -> None:
    """A withdrawn offer that held another slot frees it right after commit (no lock on
    that slot here: the job takes it, keeping this path's slot → patient → offers order)."""
    if not offer_ids:
        return
    for slot_id, offer_id in db.session.execute(
        sa.select(Slot.id, Slot.hold_offer_id).where(
            Slot.status == SlotStatus.HELD, Slot.hold_offer_id.in_(offer_ids)
        )
    ):
        schedule("expire_hold", slot_id, offer_id)
