"""``/r/<token>``: a first no-show's discounted rebooking (GET lists, POST books)."""

from __future__ import annotations

from flask import redirect, render_template
from flask.typing import ResponseReturnValue

from portal.db import db
from portal.extensions import limiter
from portal.models import Appointment
from portal.services import rebooking
from portal.services.audit import Actor
from portal.services.errors import DomainError
from portal.services.links import LinkError, LinkPurpose, read_token
from portal.services.settings import settings
from portal.web import patient_views as views
from portal.web.patient import POST_LIMIT, bp
from portal.web.transaction import commit_or_conflict


def _load_missed(token: str) -> Appointment:
    claims = read_token(LinkPurpose.REBOOK, token)
    missed = db.session.get(Appointment, claims.entity_id)
    if missed is None or missed.patient_id != claims.patient_id:
        raise LinkError()
    return missed


def _render(missed: Appointment, token: str, notice: str | None = None) -> ResponseReturnValue:
    patient = missed.patient
    usable = rebooking.can_rebook(missed)
    return render_template(
        "patient/rebook.html",
        token=token,
        missed=views.slot_view(missed.slot, patient.timezone),
        discount_percent=settings().rebook_discount_percent,
        usable=usable,
        choices=views.alternative_views(rebooking.choices(missed), patient.timezone)
        if usable
        else [],
        notice=notice,
        **views.page_context(missed.slot, patient),
    )


@bp.get("/r/<token>")
def rebook(token: str) -> ResponseReturnValue:
    """Show open times to rebook a missed visit with the discount."""
    missed = _load_missed(token)
    already = rebooking.rebooked(missed)
    if already is not None:
        return redirect(views.appointment_path(already), 303)
    return _render(missed, token)


@bp.post("/r/<token>/<id:slot_ref>")
@limiter.limit(POST_LIMIT)
def rebook_slot(token: str, slot_ref: int) -> ResponseReturnValue:
    """Book one of the listed times with the discount recorded on the appointment."""
    missed = _load_missed(token)
    already = rebooking.rebooked(missed)
    if already is not None:  # a second tap: one discounted rebooking per missed visit
        return redirect(views.appointment_path(already), 303)
    if slot_ref not in {alt.slot.id for alt in rebooking.choices(missed)}:
        return _render(missed, token, notice="Sorry, that time isn't available any more.")
    missed_id, actor = missed.id, Actor.patient(missed.patient_id)
    try:
        appointment = commit_or_conflict(
            lambda: rebooking.book_with_discount(missed_id, slot_ref, actor)
        )
    except DomainError as exc:
        return _render(_load_missed(token), token, notice=exc.message)
    return redirect(views.appointment_path(appointment), 303)
