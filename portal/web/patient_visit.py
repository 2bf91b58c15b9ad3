"""Patient pages for a booked visit: confirm, reschedule, and "Not your time zone?".

Registered on the patient blueprint (``portal.web.patient``). GET only reads; each POST
loads the signed link's row, calls one service through ``commit_or_conflict`` and
redirects back with a message. A move that loses its race is rolled back first, then
the choices are read fresh.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db, now_utc
from portal.extensions import limiter
from portal.models import Appointment, Patient
from portal.services import booking, reschedule
from portal.services.appointments import confirm_appointment
from portal.services.audit import Actor
from portal.services.errors import DomainError
from portal.services.patients import set_timezone
from portal.services.presentation import money, when, zone_label
from portal.web import patient_views as views
from portal.web.patient import POST_LIMIT, bp, load_appointment, load_offer
from portal.web.transaction import commit_or_conflict


def _to_appointment(appointment: Appointment) -> ResponseReturnValue:
    return redirect(views.appointment_path(appointment), 303)


@bp.post("/a/<token>/confirm")
@limiter.limit(POST_LIMIT)
def confirm(token: str) -> ResponseReturnValue:
    """The patient confirms they are coming (audited; staff see it)."""
    appt = load_appointment(token)
    appointment_id, actor = appt.id, Actor.patient(appt.patient_id)
    try:
        commit_or_conflict(
            lambda: confirm_appointment(db.session.get(Appointment, appointment_id), actor)
        )
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash("Thanks, you're confirmed. See you then!", "success")
    return _to_appointment(appt)


@bp.get("/a/<token>/reschedule")
def reschedule_choices(token: str) -> ResponseReturnValue:
    """Open times of the same service, best first, in the patient's zone."""
    appt = load_appointment(token)
    return _render_choices(appt, token)


def _render_choices(
    appt: Appointment, token: str, notice: str | None = None
) -> ResponseReturnValue:
    now = now_utc()
    patient = appt.patient
    movable = True
    try:
        reschedule.check_movable(appt, now)
    except DomainError as exc:
        movable, notice = False, notice or exc.message
    options = reschedule.choices(appt, now) if movable else []
    fee = reschedule.fee_for_leaving_old_time(appt, now) if movable else 0
    return render_template(
        "patient/reschedule.html",
        token=token,
        appointment=appt,
        slot=views.slot_view(appt.slot, patient.timezone),
        choices=views.alternative_views(options, patient.timezone),
        movable=movable,
        notice=notice,
        fee_cents=fee,
        fee_text=money(fee) if fee else None,
        zone_action=url_for("patient.appointment_timezone", token=token),
        **views.zone_picker(patient, appt.slot),
        **views.page_context(appt.slot, patient),
    )


@bp.post("/a/<token>/reschedule/<id:slot_ref>")
@limiter.limit(POST_LIMIT)
def reschedule_to(token: str, slot_ref: int) -> ResponseReturnValue:
    """Move the appointment to one of the choices (atomic; the old time is offered on)."""
    appt = load_appointment(token)
    if not reschedule.is_choice(appt, slot_ref):
        return _render_choices(appt, token, "Sorry, that time isn't available any more.")
    appointment_id, actor = appt.id, Actor.patient(appt.patient_id)
    accepted = request.form.get("accept_fee_cents", type=int)

    def move() -> Appointment:
        return reschedule.reschedule_appointment(
            appointment_id, slot_ref, actor, accepted_fee_cents=accepted
        )

    try:
        moved = commit_or_conflict(move)
    except reschedule.RescheduleFeeRequired as exc:
        return _render_choices(appt, token, exc.message)
    except booking.PatientBusy:
        notice = "You already have another appointment at that time."
        return _render_choices(appt, token, notice)
    except (booking.SlotTaken, booking.SlotHeld, booking.SlotNotBookable):
        return _render_choices(appt, token, "Sorry, that time was just taken. Here are the others.")
    except DomainError as exc:
        return _render_choices(appt, token, exc.message)
    shown = when(moved.slot.start_at, moved.patient.timezone)
    flash(f"Done: your appointment is now {shown}. We've sent you the new details.", "success")
    return _to_appointment(moved)


@bp.post("/a/<token>/timezone", endpoint="appointment_timezone")
@limiter.limit(POST_LIMIT)
def appointment_timezone(token: str) -> ResponseReturnValue:
    """ "Not your time zone?" on the appointment page: show (and remember) another zone."""
    appt = load_appointment(token)
    _choose_zone(appt.patient_id)
    return redirect(url_for("patient.appointment", token=token), 303)


@bp.post("/o/<token>/timezone", endpoint="offer_timezone")
@limiter.limit(POST_LIMIT)
def offer_timezone(token: str) -> ResponseReturnValue:
    """ "Not your time zone?" on an offer page."""
    offer = load_offer(token)
    _choose_zone(offer.patient_id)
    return redirect(url_for("patient.offer", token=token), 303)


def _choose_zone(patient_id: int) -> None:
    chosen = (request.form.get("timezone") or "").strip()[:64]
    if not chosen:
        flash("Pick your time zone from the list.", "error")
        return
    actor = Actor.patient(patient_id)
    try:
        commit_or_conflict(
            lambda: set_timezone(db.session.get(Patient, patient_id), chosen, actor=actor)
        )
    except DomainError:
        flash("Sorry, we don't know that time zone. Pick one from the list.", "error")
        return
    flash(
        f"Times are now shown for {zone_label(chosen, now_utc())}. We'll remember that.", "success"
    )
