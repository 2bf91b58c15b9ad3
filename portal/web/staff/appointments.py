"""Staff acting on an appointment from the day view: check in, complete, cancel for the
patient (with a reason, optionally waiving the fee).

One click each, htmx swapping the slot's day-view row (or the slot panel) in place;
without JavaScript the form posts and redirects back to the page it came from.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal.db import db
from portal.extensions import htmx
from portal.models import Appointment
from portal.services import appointments, cancellation
from portal.services.audit import Actor
from portal.services.errors import DomainError
from portal.services.presentation import money
from portal.web.staff.auth import safe_next
from portal.web.staff.blueprint import bp
from portal.web.staff.day import _day_url, _get_slot, _render_day_row, _render_slot
from portal.web.transaction import commit_or_conflict


def _act(appointment_id: int, action: Callable[[Appointment, Actor], str]) -> ResponseReturnValue:
    """Run ``action`` and commit (or show why not); answer htmx in place, else redirect."""
    found = db.session.get(Appointment, appointment_id)
    if found is None:
        abort(404)
    slot_id, actor = found.slot_id, Actor.staff(current_user)
    in_row = bool(htmx) and htmx.target == f"slot-{slot_id}"
    expanded = request.form.get("expanded") == "1"
    failed = False
    try:
        message = commit_or_conflict(
            lambda: action(db.session.get(Appointment, appointment_id), actor)
        )
    except DomainError as exc:
        flash(exc.message, "error")
        failed = True
    else:
        if not (in_row and not expanded):  # a folded row shows the change as its badge
            flash(message, "success")
    slot = _get_slot(slot_id)
    if in_row:  # a refusal opens the row's panel, where the message shows
        return _render_day_row(slot, expanded=expanded or failed)
    if htmx:
        return _render_slot(slot)
    return redirect(safe_next(request.form.get("next")) or _day_url(slot), 303)


@bp.post("/appointments/<id:appointment_id>/check-in")
def check_in(appointment_id: int) -> ResponseReturnValue:
    """Mark the patient arrived."""

    def arrive(found: Appointment, actor: Actor) -> str:
        appointments.check_in(found, actor)
        return f"{found.patient.name} is checked in."

    return _act(appointment_id, arrive)


@bp.post("/appointments/<id:appointment_id>/complete")
def complete(appointment_id: int) -> ResponseReturnValue:
    """Mark the visit done."""

    def done(found: Appointment, actor: Actor) -> str:
        appointments.complete(found, actor)
        return f"{found.patient.name}'s visit is complete."

    return _act(appointment_id, done)


@bp.post("/appointments/<id:appointment_id>/cancel")
def cancel(appointment_id: int) -> ResponseReturnValue:
    """Cancel for the patient (they called): the policy's fee, unless waived (audited)."""
    reason = request.form.get("reason", "").replace("\x00", "").strip()[:200]
    waive = request.form.get("waive_fee") == "1"

    def cancel_it(found: Appointment, actor: Actor) -> str:
        if not reason:
            raise DomainError("Give a reason for the cancellation.", code="reason_required")
        done = cancellation.cancel_for_patient(found.id, actor, reason=reason, waive_fee=waive)
        if done.already:
            return "This appointment was already cancelled."
        fee = done.appointment.cancellation_fee_cents or 0
        if waive and done.quote and done.quote.fee_cents:
            charged = f"the {money(done.quote.fee_cents)} fee waived"
        else:
            charged = f"fee {money(fee)}" if fee else "no fee"
        return f"Cancelled for {found.patient.name} ({charged}); the slot is offered again."

    return _act(appointment_id, cancel_it)


def fee_preview(appointment: Appointment) -> str:
    """What cancelling now would cost, for the panel: "$225.00 (late fee)" or "No fee"."""
    current = cancellation.quote(appointment)
    if current.free:
        return f"No fee ({current.tier.value})"
    return f"{money(current.fee_cents)} ({current.tier.value} fee)"


@bp.app_template_global("cancellation_fee_preview")
def _fee_preview_global(appointment: Appointment) -> str:
    return fee_preview(appointment)
