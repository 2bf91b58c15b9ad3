"""``/staff/slots/<id>/candidates``: who could take an open slot, why the others not, and
offering it to one patient now (through the offer engine, ``manual_offers.offer_now``)."""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db
from portal.models import Slot
from portal.services import manual_offers
from portal.services.matching import EXCLUSION_REASONS, Exclusion
from portal.services.presentation import when
from portal.web.ids import parse_id
from portal.web.staff.actions import actor, back_to, perform
from portal.web.staff.blueprint import bp

#: Left-out reasons staff may override by offering anyway (the engine refuses the rest).
OVERRIDABLE = frozenset(
    {
        Exclusion.DAILY_CAP,
        Exclusion.OUTSIDE_WINDOW,
        Exclusion.OUTSIDE_DATES,
        Exclusion.SHORT_NOTICE,
        Exclusion.PAST_CUTOFF,
        Exclusion.UNREACHABLE,
        Exclusion.OPTED_OUT,
    }
)


def _slot(slot_id: int) -> Slot:
    found = db.session.get(Slot, slot_id)
    if found is None:
        abort(404)
    return found


@bp.get("/slots/<id:slot_id>/candidates")
def slot_candidates(slot_id: int) -> ResponseReturnValue:
    """The ranked candidates with their reasons, and every waiting patient left out, with why."""
    slot = _slot(slot_id)
    match, blocked = manual_offers.ranked_for_slot(slot)
    return render_template(
        "staff/candidates.html",
        slot=slot,
        match=match,
        blocked=blocked,
        reasons=EXCLUSION_REASONS,
        overridable=OVERRIDABLE,
        tz=slot.location.timezone,
    )


@bp.post("/slots/<id:slot_id>/offer")
def slot_offer(slot_id: int) -> ResponseReturnValue:
    """Offer the slot to one waiting patient now."""
    slot = _slot(slot_id)
    entry_id = parse_id(request.form.get("entry_id"))

    def offer() -> str:
        made = manual_offers.offer_now(slot_id, entry_id or 0, actor())
        until = when(made.window_expires_at, slot.location.timezone, "time")
        return f"Offered to {made.patient.name}: they have until {until} to answer."

    perform(offer)
    return back_to(url_for("staff.slot_candidates", slot_id=slot_id))
