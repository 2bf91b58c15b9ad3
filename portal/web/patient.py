"""Patient pages behind signed links: answer an offer, book an alternative, see a booking.

Patients never log in: the token in the URL names one offer (or appointment) and its
patient. A token whose patient does not own the row is treated as invalid, so editing
an id never reveals anyone else. GET never changes state (link scanners follow links);
each POST calls one service and commits once. When a booking loses a race the
transaction is rolled back *first*, then alternatives are read fresh and shown.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import joinedload

from portal.db import db, now_utc
from portal.extensions import limiter
from portal.models import Appointment, Offer, Patient, Slot
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    OfferStatus,
    SlotStatus,
    WaitlistStatus,
)
from portal.services import booking, calendar, holds, reschedule, responses
from portal.services.alternatives import (
    alternatives_after_race,
    find_alternatives,
    is_alternative_for,
    still_bookable,
)
from portal.services.audit import Actor
from portal.services.errors import DomainError
from portal.services.links import LinkError, LinkPurpose, offer_token, read_token
from portal.services.payments.provider import get_provider
from portal.services.presentation import when
from portal.services.responses import CHOICE_STATES, ENDED_STATES, OfferState, offer_state
from portal.web import patient_views as views
from portal.web.transaction import commit_or_conflict

bp = Blueprint("patient", __name__)

POST_LIMIT = "30 per minute"


@bp.errorhandler(LinkError)
def _bad_link(error: LinkError) -> ResponseReturnValue:
    """A forged, foreign or expired link: a friendly page that names nobody."""
    status = 410 if error.expired else 404
    return render_template(
        "patient/link_error.html", expired=error.expired, **views.page_context()
    ), status


def error_context(path: str) -> dict[str, Any]:
    """The patient layout's variables for an error page at ``path`` (``/o/…`` or ``/a/…``).

    When the path carries a valid link, the page names that location's phone number;
    otherwise the clinic's (see ``patient_views.clinic_phone``).
    """
    area, _, rest = path.lstrip("/").partition("/")
    token = rest.partition("/")[0]
    try:
        row: Offer | Appointment = load_appointment(token) if area == "a" else load_offer(token)
    except LinkError:
        return views.page_context()
    return views.page_context(row.slot, row.patient)


#: What an offer page reads of an offer, loaded with it in one query.
OFFER_GRAPH = (
    joinedload(Offer.slot).options(
        joinedload(Slot.location), joinedload(Slot.service), joinedload(Slot.practitioner)
    ),
    joinedload(Offer.patient),
    joinedload(Offer.waitlist_entry),
)


def load_offer(token: str) -> Offer:
    claims = read_token(LinkPurpose.OFFER, token)
    offer = db.session.get(Offer, claims.entity_id, options=OFFER_GRAPH)
    if offer is None or offer.patient_id != claims.patient_id:
        raise LinkError()
    return offer


def _still_waiting(offer: Offer) -> bool:
    """Whether the offer's waitlist entry is still active (loaded with the offer: no query)."""
    return offer.waitlist_entry.status == WaitlistStatus.ACTIVE


def _to_offer(token: str) -> ResponseReturnValue:
    return redirect(url_for("patient.offer", token=token), 303)


# --- offers ------------------------------------------------------------------------


@bp.get("/o/<token>")
def offer(token: str) -> ResponseReturnValue:
    """Show an offer, or what became of it."""
    return _render_offer(load_offer(token), token)


def _render_offer(offer: Offer, token: str, *, busy: bool = False) -> ResponseReturnValue:
    state = offer_state(offer, now_utc())
    slot, patient = offer.slot, offer.patient
    ctx = (
        views.page_context(slot, patient)
        | views.zone_picker(patient, slot)
        | {
            "zone_action": url_for("patient.offer_timezone", token=token),
            "token": token,
            "offer": offer,
            "slot": views.slot_view(slot, patient.timezone),
            "state": state,
            "still_waitlisted": _still_waiting(offer),
        }
    )
    if state in (OfferState.OPEN, OfferState.BUSY):
        window_left = int((offer.window_expires_at - now_utc()).total_seconds() // 60)
        return render_template(
            "patient/offer.html",
            busy=busy or state == OfferState.BUSY,
            expires_at=offer.window_expires_at,
            expires_text=when(offer.window_expires_at, patient.timezone, "time"),
            minutes_left=max(window_left, 1),
            **ctx,
        )
    if state == OfferState.HELD:
        return render_template(
            "patient/held.html",
            charge=views.pending_charge(offer),
            pay_online=get_provider() is not None,
            hold_expires_at=slot.hold_expires_at,
            hold_seconds=max(int((slot.hold_expires_at - now_utc()).total_seconds()), 0),
            **ctx,
        )
    if state in CHOICE_STATES:
        instead = views.booked_instead(offer)
        if instead is None:
            return _render_taken(offer, token, just_now=False)
        rebooked = "accepted" if instead.slot_id == offer.slot_id else "rebooked"
        ctx |= {"state": rebooked, "appointment_link": views.appointment_path(instead)}
    elif state == OfferState.ACCEPTED:
        appointment = views.appointment_for_offer(offer)
        ctx["appointment_link"] = views.appointment_path(appointment) if appointment else None
    return render_template("patient/offer_closed.html", **ctx)


def _render_taken(
    offer: Offer,
    token: str,
    *,
    just_now: bool,
    notice: str | None = None,
    reread: bool = True,
) -> ResponseReturnValue:
    """The slot went to someone else, or the offer ended unanswered: show the ways on.

    Alternatives are read after any rollback. An offer that ended while its slot is
    still open offers that slot too. ``reread=False``: ``offer`` was read in this
    transaction and nothing was rolled back since.
    """
    if reread:  # after a rollback everything is expired: read the offer and its graph at once
        offer = (
            db.session.get(Offer, offer.id, options=OFFER_GRAPH, populate_existing=True) or offer
        )
    slot, patient = offer.slot, offer.patient
    state = offer_state(offer, now_utc())
    ended = state in ENDED_STATES
    # A race's losers share one read of the slot's candidates; any later look is fresh
    # (e.g. after "that time was just taken too").
    find = alternatives_after_race if just_now else find_alternatives
    alternatives = find(patient, slot, offer.waitlist_entry)
    return render_template(
        "patient/taken.html",
        token=token,
        slot=views.slot_view(slot, patient.timezone),
        ended=state.value if ended else None,
        closed_then=offer.withdrawn_reason == "closure",
        still_open=ended and still_bookable(slot, patient),
        alternatives=views.alternative_views(alternatives, patient.timezone),
        just_now=just_now,
        notice=notice,
        can_book=True,
        pays_first=views.needs_payment(patient),
        still_waitlisted=_still_waiting(offer),
        **views.page_context(slot, patient),
    )


@bp.post("/o/<token>/accept")
@limiter.limit(POST_LIMIT)
def accept(token: str) -> ResponseReturnValue:
    """Accept an offer: booked (→ appointment), held for payment, or lost (→ alternatives)."""
    offer = load_offer(token)
    if offer.status == OfferStatus.WITHDRAWN:  # a tap after the slot went: nothing to try
        return _render_taken(offer, token, just_now=True, reread=False)
    offer_id, actor = offer.id, Actor.patient(offer.patient_id)
    try:
        outcome = commit_or_conflict(lambda: responses.accept_offer(offer_id, actor=actor))
    except booking.SlotTaken:
        return _render_taken(offer, token, just_now=True)
    except booking.SlotHeld:
        if offer.slot.status == SlotStatus.HELD and offer.slot.hold_offer_id == offer_id:
            return _to_offer(token)  # a second tap on our own hold
        return _render_offer(offer, token, busy=True)
    except booking.OfferUnavailable as exc:
        if exc.offer_status == OfferStatus.WITHDRAWN:
            return _render_taken(offer, token, just_now=True)
        return _to_offer(token)
    except (booking.EntryClosed, booking.PatientBusy) as exc:
        return _render_taken(offer, token, just_now=False, notice=exc.message)
    except DomainError as exc:
        flash(exc.message, "error")
        return _to_offer(token)
    if outcome.held or outcome.appointment is None:
        return _to_offer(token)  # the offer page now shows the hold and how to pay
    return redirect(views.appointment_path(outcome.appointment), 303)


@bp.post("/o/<token>/decline")
@limiter.limit(POST_LIMIT)
def decline(token: str) -> ResponseReturnValue:
    """Pass on an offer; the patient stays on the waitlist."""
    offer = load_offer(token)
    offer_id, actor = offer.id, Actor.patient(offer.patient_id)
    with contextlib.suppress(DomainError):  # already answered or gone: the page says which
        commit_or_conflict(lambda: responses.decline_offer(offer_id, actor=actor))
    return _to_offer(token)


@bp.post("/o/<token>/alternatives/<id:slot_ref>")
@limiter.limit(POST_LIMIT)
def book_alternative(token: str, slot_ref: int) -> ResponseReturnValue:
    """Book one of the choices shown after the offer was lost or ended (see ``_render_taken``)."""
    offer = load_offer(token)
    state = offer_state(offer, now_utc())
    if state not in CHOICE_STATES:
        return _to_offer(token)
    instead = views.booked_instead(offer)
    if instead is not None:  # a second tap, or another tab: one rebooking per lost offer
        return redirect(views.appointment_path(instead), 303)
    patient = offer.patient
    slot = db.session.get(Slot, slot_ref)
    ended = state in ENDED_STATES
    if slot is None or not is_alternative_for(slot, offer.slot, patient, original_allowed=ended):
        return _render_taken(
            offer, token, just_now=False, notice="Sorry, that time isn't available any more."
        )
    slot_id, patient_id = slot.id, patient.id
    if views.needs_payment(patient):  # the same hold as an accepted offer: pay, then booked
        return _hold_alternative(offer, token, slot_id)

    def book() -> Appointment:
        return booking.book_slot(
            slot_id,
            db.session.get(Patient, patient_id),
            source=AppointmentSource.ALTERNATIVE,
            actor=Actor.patient(patient_id),
        )

    try:
        appointment = commit_or_conflict(book)
    except booking.PatientBusy:
        notice = "You already have an appointment at that time, so we didn't book this one."
        return _render_taken(offer, token, just_now=False, notice=notice)
    except DomainError:
        notice = "Sorry, that time was just taken too."
        return _render_taken(offer, token, just_now=False, notice=notice)
    return redirect(views.appointment_path(appointment), 303)


def _hold_alternative(offer: Offer, token: str, slot_id: int) -> ResponseReturnValue:
    offer_id, actor = offer.id, Actor.patient(offer.patient_id)
    try:
        outcome = commit_or_conflict(lambda: holds.hold_alternative(offer_id, slot_id, actor=actor))
    except DomainError:
        notice = "Sorry, that time was just taken too. Please call the clinic to book."
        return _render_taken(offer, token, just_now=False, notice=notice)
    held = outcome.offer
    new_token = offer_token(held.id, held.patient_id, held.slot.start_at)
    return redirect(url_for("patient.offer", token=new_token), 303)


# --- appointments ------------------------------------------------------------------


def load_appointment(token: str) -> Appointment:
    """Return the appointment a token names, or raise ``LinkError`` (404, or 410 if expired)."""
    claims = read_token(LinkPurpose.APPOINTMENT, token)
    appt = db.session.get(Appointment, claims.entity_id)
    if appt is None or appt.patient_id != claims.patient_id:
        raise LinkError()
    return appt


@bp.get("/a/<token>")
def appointment(token: str) -> ResponseReturnValue:
    """Show a booked appointment in the patient's time zone."""
    appt = load_appointment(token)
    return render_template(
        "patient/appointment.html",
        token=token,
        appointment=appt,
        slot=views.slot_view(appt.slot, appt.patient.timezone),
        google_calendar_url=calendar.google_calendar_url(appt),
        outlook_calendar_url=calendar.outlook_calendar_url(appt),
        reminders=views.upcoming_reminders(appt),
        can_confirm=appt.status == AppointmentStatus.BOOKED and appt.slot.start_at > now_utc(),
        can_move=appt.status in reschedule.MOVABLE and appt.slot.start_at > now_utc(),
        zone_action=url_for("patient.appointment_timezone", token=token),
        **views.zone_picker(appt.patient, appt.slot),
        cancellation=views.cancellation_summary(appt),
        **views.page_context(appt.slot, appt.patient),
    )


@bp.get("/a/<token>/calendar.ics", endpoint="calendar")
def calendar_file(token: str) -> ResponseReturnValue:
    """Download the appointment as an iCalendar file (GET only reads)."""
    appt = load_appointment(token)
    return Response(
        calendar.appointment_ics(appt),
        content_type=calendar.ICS_CONTENT_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{calendar.ICS_FILENAME}"',
            # It carries the signed link and the visit's details: keep it out of caches.
            "Cache-Control": "no-store",
        },
    )
