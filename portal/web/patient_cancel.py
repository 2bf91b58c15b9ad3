"""The patient's cancel flow on ``/a/<token>``: the quote, then the confirmed cancel.

``POST /a/<token>/cancel`` only reads: it shows what cancelling now costs, why, what
happens next and the policy, with Confirm and Keep. ``POST /a/<token>/cancel/confirm``
carries the quoted fee; the service recomputes it under the slot's lock and, if a
threshold passed meanwhile, the page shows the new quote instead of charging. A
double submit finds the appointment cancelled and lands on the same confirmation.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import now_utc
from portal.extensions import limiter
from portal.models import Appointment
from portal.services import cancellation
from portal.services.audit import Actor
from portal.services.cancellation import Quote, QuoteChanged
from portal.services.errors import DomainError
from portal.web import patient_views as views
from portal.web.ids import parse_id
from portal.web.patient import POST_LIMIT, bp, load_appointment
from portal.web.transaction import commit_or_conflict

CANCELLABLE = ("booked", "confirmed")


def _render_quote(
    appt: Appointment, token: str, quote: Quote, *, changed: bool = False, error: str | None = None
) -> ResponseReturnValue:
    return render_template(
        "patient/cancel_quote.html",
        token=token,
        appointment=appt,
        quote=quote,
        changed=changed,
        error=error,
        slot=views.slot_view(appt.slot, appt.patient.timezone),
        tz=appt.patient.timezone,
        **views.page_context(appt.slot, appt.patient),
    )


def _to_appointment(token: str) -> ResponseReturnValue:
    return redirect(url_for("patient.appointment", token=token), 303)


@bp.post("/a/<token>/cancel")
@limiter.limit(POST_LIMIT)
def cancel(token: str) -> ResponseReturnValue:
    """Quote the cancellation: the fee now, the rule behind it, Confirm or Keep."""
    appt = load_appointment(token)
    if appt.status.value not in CANCELLABLE:
        return _to_appointment(token)
    now = now_utc()
    if now >= appt.slot.start_at:
        return _render_quote(
            appt,
            token,
            cancellation.quote(appt, now),
            error="This appointment has already started, so it can't be cancelled online.",
        )
    return _render_quote(appt, token, cancellation.quote(appt, now))


@bp.post("/a/<token>/cancel/confirm")
@limiter.limit(POST_LIMIT)
def cancel_confirm(token: str) -> ResponseReturnValue:
    """Cancel at the fee the patient saw, or show the new quote if it moved."""
    appt = load_appointment(token)
    appointment_id, actor = appt.id, Actor.patient(appt.patient_id)
    raw_fee = request.form.get("quoted_fee_cents", "")
    quoted = 0 if raw_fee == "0" else parse_id(raw_fee)
    if quoted is None:  # a form that did not come from the quote page: quote afresh
        return cancel(token)
    try:
        commit_or_conflict(
            lambda: cancellation.cancel_for_patient(
                appointment_id, actor, expected_fee_cents=quoted, reason=None
            )
        )
    except QuoteChanged as exc:
        return _render_quote(load_appointment(token), token, exc.quote, changed=True)
    except DomainError as exc:
        appt = load_appointment(token)
        return _render_quote(appt, token, cancellation.quote(appt), error=exc.message)
    return _to_appointment(token)
