"""``/staff/closures``: holidays and reduced hours, a month calendar, and the bookings a new
closure leaves inside it (cancel for the patient — no fee — or move to another time)."""

from __future__ import annotations

from datetime import date, time

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db, now_utc
from portal.models import Closure, Location, Slot
from portal.models.enums import SlotStatus
from portal.services import closures as closure_service
from portal.services import reschedule
from portal.services.appointments import active_appointment
from portal.services.closure_calendar import month_view
from portal.services.errors import DomainError
from portal.services.timezones import to_local
from portal.web.ids import parse_id
from portal.web.staff.actions import actor, back_to, perform
from portal.web.staff.blueprint import bp
from portal.web.transaction import commit_or_conflict


def _locations() -> list[Location]:
    return list(db.session.scalars(sa.select(Location).order_by(Location.name, Location.id)))


def _month(location: Location) -> tuple[int, int]:
    raw = request.args.get("month", "")
    try:
        year, month = (int(x) for x in raw.split("-"))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    today = to_local(now_utc(), location.timezone).date()
    return today.year, today.month


def _booked_counts(rows: list[Closure]) -> dict[int, int]:
    return {
        c.id: len(closure_service.slots_inside(c, (SlotStatus.BOOKED, SlotStatus.HELD)))
        for c in rows
    }


def _render(
    form: dict[str, str] | None = None, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    locations = _locations()
    if not locations:
        return render_template("staff/closures.html", locations=[], form={}, error=None), status
    chosen = parse_id(request.args.get("location"))
    location = next((loc for loc in locations if loc.id == chosen), locations[0])
    year, month = _month(location)
    upcoming = closure_service.upcoming_closures()
    return (
        render_template(
            "staff/closures.html",
            locations=locations,
            location=location,
            view=month_view(location, year, month),
            upcoming=upcoming,
            booked=_booked_counts(upcoming),
            form=form or {},
            error=error,
        ),
        status,
    )


@bp.get("/closures")
def closures() -> ResponseReturnValue:
    """The month calendar for one location, upcoming closures, and the form to add one."""
    return _render()


def _parse_day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw or "")
    except ValueError:
        return None


def _parse_time(raw: str | None) -> time | None:
    try:
        return time.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@bp.post("/closures")
def closures_create() -> ResponseReturnValue:
    """Close a location (or all) for whole days or reduced hours; offers inside are withdrawn."""
    form = request.form.to_dict()
    scope = form.get("location", "")
    location = None
    if scope != "all":
        location = db.session.get(Location, parse_id(scope) or 0)
        if location is None:
            return _render(form, "Choose a location, or all locations.", 422)
    first, last = (
        _parse_day(form.get("first_day")),
        _parse_day(form.get("last_day") or form.get("first_day")),
    )
    if first is None or last is None:
        return _render(form, "Choose the first (and last) day as dates.", 422)
    hours = form.get("kind") == "hours"
    start, end = (
        (_parse_time(form.get("start_time")), _parse_time(form.get("end_time")))
        if hours
        else (None, None)
    )
    if hours and (start is None or end is None):
        return _render(form, "For reduced hours, give the time the clinic closes and reopens.", 422)
    reason = form.get("reason", "")[:400]
    try:
        result = commit_or_conflict(
            lambda: closure_service.create_closure(
                location=db.session.get(Location, location.id) if location else None,
                first_day=first,
                last_day=last,
                start_time=start,
                end_time=end,
                reason=reason,
                actor=actor(),
            )
        )
    except DomainError as exc:
        return _render(form, exc.message, 422)
    parts = [
        f"Closure saved ({len(result.closures)} location{'s' if len(result.closures) != 1 else ''})."
    ]
    if result.withdrawn:
        parts.append(
            f"{result.withdrawn} pending offer{'s were' if result.withdrawn != 1 else ' was'} withdrawn and the patients told."
        )
    if result.booked:
        parts.append(
            f"{len(result.booked)} booking{'s are' if len(result.booked) != 1 else ' is'} inside it: move or cancel them below."
        )
        flash(" ".join(parts), "warning")
        return redirect(url_for("staff.closures_detail", closure_id=result.closures[0].id), 303)
    flash(" ".join(parts), "success")
    return redirect(url_for("staff.closures", location=location.id if location else None), 303)


def _closure(closure_id: int) -> Closure:
    found = db.session.get(Closure, closure_id)
    if found is None:
        abort(404)
    return found


@bp.get("/closures/<id:closure_id>")
def closures_detail(closure_id: int) -> ResponseReturnValue:
    """A closure and the bookings inside it, each with cancel and move."""
    closure = _closure(closure_id)
    rows = []
    for slot in closure_service.slots_inside(closure, (SlotStatus.BOOKED, SlotStatus.HELD)):
        appointment = active_appointment(slot.id)
        options = []
        if appointment is not None:
            options = reschedule.choices(appointment, limit=6)
        rows.append((slot, appointment, options))
    open_inside = closure_service.slots_inside(closure, (SlotStatus.OPEN,))
    return render_template(
        "staff/closure.html", closure=closure, rows=rows, open_inside=open_inside
    )


@bp.post("/closures/<id:closure_id>/delete")
def closures_delete(closure_id: int) -> ResponseReturnValue:
    """Reopen the time; slots whose filling stopped for the closure are offered again."""
    closure = _closure(closure_id)
    location_id = closure.location_id

    def run() -> str:
        restarted = closure_service.delete_closure(closure_id, actor())
        return "Closure removed." + (
            f" {restarted} open slot{'s are' if restarted != 1 else ' is'} offered to the waitlist again."
            if restarted
            else ""
        )

    perform(run)
    return redirect(url_for("staff.closures", location=location_id), 303)


def _booked_slot(closure: Closure, slot_id: int) -> Slot:
    slot = db.session.get(Slot, slot_id)
    if slot is None or slot not in closure_service.slots_inside(
        closure, (SlotStatus.BOOKED, SlotStatus.HELD, SlotStatus.OPEN)
    ):
        abort(404)
    return slot


@bp.post("/closures/<id:closure_id>/slots/<id:slot_id>/cancel")
def closures_cancel(closure_id: int, slot_id: int) -> ResponseReturnValue:
    """Cancel a booking inside the closure: no fee, the patient is told why."""
    closure = _closure(closure_id)
    _booked_slot(closure, slot_id)
    reason = request.form.get("reason", "").strip()[:200] or "the clinic is closed at that time"

    def run() -> str:
        appointment = closure_service.cancel_for_closure(slot_id, actor(), reason)
        return f"{appointment.patient.name}'s appointment is cancelled (no fee) and they have been told."

    perform(run)
    return back_to(url_for("staff.closures_detail", closure_id=closure_id))


@bp.post("/closures/<id:closure_id>/slots/<id:slot_id>/move")
def closures_move(closure_id: int, slot_id: int) -> ResponseReturnValue:
    """Move a booking inside the closure to another open time of the same service."""
    closure = _closure(closure_id)
    _booked_slot(closure, slot_id)
    new_slot_id = parse_id(request.form.get("new_slot_id"))
    appointment = active_appointment(slot_id)
    if appointment is None or new_slot_id is None:
        flash("Choose the time to move the booking to.", "error")
        return back_to(url_for("staff.closures_detail", closure_id=closure_id))
    appointment_id = appointment.id

    def run() -> str:
        moved = closure_service.move_appointment(appointment_id, new_slot_id, actor())
        return f"{moved.patient.name} is moved; they have been told the new time."

    perform(run)
    return back_to(url_for("staff.closures_detail", closure_id=closure_id))
