"""The day view and the slot panel: one location's local day, and acting on one slot.

Each day-view row expands (htmx) into the slot panel; without JavaScript it links to
the slot page, which shows the same panel. A POST calls one service and commits once;
htmx gets the re-rendered panel back (inside its day-view row when that is what it
targets), anything else a 303 to the page it came from. Outcomes are flash messages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal.db import db
from portal.extensions import htmx
from portal.models import Location, Offer, Patient, Slot
from portal.models.enums import AppointmentSource
from portal.services import booking, dayview, holds, staffops
from portal.services.audit import Actor
from portal.services.errors import DomainError
from portal.services.phones import mask_phone
from portal.services.presentation import when
from portal.services.release import release_slot as release_slot_service
from portal.web.ids import parse_id
from portal.web.staff.auth import safe_next
from portal.web.staff.blueprint import bp
from portal.web.transaction import commit_or_conflict

#: Dates the day view accepts; anything else is a typo, not a request.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)

# --- the day view ------------------------------------------------------------------


@bp.get("/day")
def day() -> ResponseReturnValue:
    """List one location's slots for one local day, with filling state per open slot."""
    locations = list(db.session.scalars(sa.select(Location).order_by(Location.name, Location.id)))
    if not locations:
        return render_template("staff/day.html", location=None, locations=[])
    location = _chosen_location(locations)
    today = dayview.local_today(location.timezone)
    shown = _chosen_day(today)
    slots = dayview.slots_for_local_day(location, shown)
    return render_template(
        "staff/day.html",
        locations=locations,
        location=location,
        local_day=dayview.LocationDay(location, shown, slots),
        today=today,
        prev_day=shown - timedelta(days=1) if shown > FIRST_DAY else None,
        next_day=shown + timedelta(days=1) if shown < LAST_DAY else None,
        extras=staffops.row_extras(slots),
        tz=location.timezone,
    )


def _chosen_location(locations: list[Location]) -> Location:
    raw = request.args.get("location", "")
    if not raw:
        return locations[0]
    for location in locations:
        if raw == str(location.id):
            return location
    flash(f"That location wasn't found; showing {locations[0].name}.", "warning")
    return locations[0]


def _chosen_day(today: date) -> date:
    raw = request.args.get("date", "")
    if not raw:
        return today
    try:
        chosen = date.fromisoformat(raw)
    except ValueError:
        chosen = None
    if chosen is None or not FIRST_DAY <= chosen <= LAST_DAY:
        flash("That date wasn't valid (use YYYY-MM-DD); showing today.", "warning")
        return today
    return chosen


def _day_url(slot: Slot) -> str:
    local_day = when(slot.start_at, slot.location.timezone, "%Y-%m-%d")
    return url_for("staff.day", location=slot.location_id, date=local_day)


# --- the slot page / panel ---------------------------------------------------------


@bp.get("/slots/<id:slot_id>")
def slot(slot_id: int) -> ResponseReturnValue:
    """Show a slot: the page, the panel (htmx), or its day-view row expanded or folded."""
    found = _get_slot(slot_id)
    if htmx and request.args.get("collapse"):
        return _render_day_row(found, expanded=False)
    return _render_slot(found)


def _get_slot(slot_id: int) -> Slot:
    found = db.session.get(Slot, slot_id)
    if found is None:
        abort(404)
    return found


def _panel_context(found: Slot) -> dict[str, Any]:
    query = request.args.get("q", "")
    return {
        "clash": g.get("booking_clash"),
        "panel": staffops.slot_panel(found),
        "tz": found.location.timezone,
        "q": query,
        "patients": staffops.search_patients(query),
        "mask_phone": mask_phone,
        "day_url": _day_url(found),
    }


def _render_slot(found: Slot) -> ResponseReturnValue:
    if not htmx:
        return render_template("staff/slot.html", **_panel_context(found))
    if htmx.target == f"slot-{found.id}":
        return _render_day_row(found, expanded=True)
    return render_template("staff/_slot_panel.html", fragment=True, **_panel_context(found))


def _render_day_row(found: Slot, *, expanded: bool) -> ResponseReturnValue:
    """Render the slot's ``<tbody>`` in the day view, with the panel under it if expanded."""
    row = dayview.day_slot(found.id)
    context = _panel_context(found) if expanded else {"tz": found.location.timezone}
    return render_template(
        "staff/_slot_panel.html",
        as_row=True,
        expanded=expanded,
        fragment=True,
        row=row,
        extras=staffops.row_extras([row])[found.id],
        **context,
    )


# --- acting on a slot --------------------------------------------------------------


def _act(slot_id: int, action: Callable[[Slot, Actor], str]) -> ResponseReturnValue:
    """Run ``action`` and commit, or roll back and show why; then answer htmx or redirect."""
    actor = Actor.staff(current_user)
    try:
        message = commit_or_conflict(lambda: action(_get_slot(slot_id), actor))
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(message, "success")
    if htmx or g.get("booking_clash"):
        # A clash needs a decision on this page (no redirect would keep the form).
        return _render_slot(_get_slot(slot_id))
    back = safe_next(request.form.get("next")) or url_for("staff.slot", slot_id=slot_id)
    return redirect(back, 303)


@bp.post("/slots/<id:slot_id>/book")
def book_slot(slot_id: int) -> ResponseReturnValue:
    """Book the slot for the chosen patient, withdrawing any pending offers."""
    patient_id = parse_id(request.form.get("patient_id"))
    patient = db.session.get(Patient, patient_id) if patient_id else None
    overlap_reason = request.form.get("overlap_reason", "").strip()[:200] or None

    def book(found: Slot, actor: Actor) -> str:
        if patient is None:
            raise DomainError("Choose a patient to book.", code="patient_required")
        try:
            booking.book_slot(
                found.id,
                patient,
                source=AppointmentSource.STAFF,
                actor=actor,
                overlap_reason=overlap_reason,
            )
        except booking.PatientBusy as busy:
            # Show the clash with a "book anyway" form under the flash message.
            g.booking_clash = {"patient": patient, "appointment": busy.clash}
            raise
        start = when(found.start_at, found.location.timezone)
        return f"Booked {patient.name} for {start}." + (
            " (overlap noted)" if overlap_reason else ""
        )

    return _act(slot_id, book)


@bp.post("/slots/<id:slot_id>/release")
def release_slot(slot_id: int) -> ResponseReturnValue:
    """Cancel the slot's booking and offer the slot to the waitlist."""

    reason = request.form.get("reason", "").strip()[:200] or None

    def release(found: Slot, actor: Actor) -> str:
        release_slot_service(found.id, actor, reason=reason, only_booked=True)
        return "Slot released: the booking is cancelled, the patient told, and the waitlist asked."

    return _act(slot_id, release)


@bp.post("/slots/<id:slot_id>/hold/complete")
def complete_hold(slot_id: int) -> ResponseReturnValue:
    """Record the held patient's deposit or prepayment as collected, booking the slot."""
    offer_id = parse_id(request.form.get("offer_id"))

    def complete(found: Slot, actor: Actor) -> str:
        offer = db.session.get(Offer, offer_id) if offer_id else None
        if offer is None or offer.slot_id != found.id or found.hold_offer_id != offer.id:
            raise DomainError("This hold has ended; nothing was collected.", code="hold_gone")
        holds.complete_hold(offer.id, actor=actor)
        return f"Payment recorded: {offer.patient.name} is booked."

    return _act(slot_id, complete)


@bp.post("/slots/<id:slot_id>/restart-filling")
def restart_filling(slot_id: int) -> ResponseReturnValue:
    """Ask the waitlist again for an open slot where nobody was left to ask."""

    def restart(found: Slot, actor: Actor) -> str:
        staffops.restart_filling(found, actor)
        return "Filling restarted: matching waitlist patients will be offered this slot."

    return _act(slot_id, restart)


# --- patient picker ----------------------------------------------------------------


@bp.get("/patients/search")
def patient_search() -> ResponseReturnValue:
    """Return ``<option>``s for patients matching ``q`` (name, phone or email)."""
    query = request.args.get("q", "")
    return render_template(
        "staff/_patient_options.html",
        q=query,
        patients=staffops.search_patients(query),
        mask_phone=mask_phone,
    )
