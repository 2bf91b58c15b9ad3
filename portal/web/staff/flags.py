"""``/staff/flags``: patient flags to review, each beside the patient's history.

Notes and the resolution go in the flag's audited thread; the tier form on the review
page changes what the patient must pay first (with a reason).
"""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db
from portal.extensions import htmx
from portal.models import PatientFlag
from portal.models.enums import FlagKind
from portal.services import flag_review, patient_admin
from portal.services.patient_admin import EFFECTIVE_LABELS, TIER_LABELS
from portal.web.ids import parse_id
from portal.web.staff.actions import actor, back_to, perform
from portal.web.staff.blueprint import bp

PAGE_SIZE = 25
#: What each kind of flag asks of staff.
FLAG_HELP = {
    FlagKind.NO_SHOW: "Missed appointments. Consider a deposit or prepayment before the next booking.",
    FlagKind.FREQUENT_CANCELLATIONS: "Cancelled often lately. Talk to the patient; a deposit may help.",
    FlagKind.UNREACHABLE: "No text, email or call reached them. Check the contact details, then resume their waitlist entries.",
    FlagKind.INVALID_PHONE: "The phone number is wrong or cannot be texted. Ask for a new one and edit the patient.",
}


@bp.get("/flags")
def flags() -> ResponseReturnValue:
    """Open flags (or resolved ones), newest first, by kind."""
    raw = request.args.get("kind", "")
    kind = FlagKind(raw) if raw in {k.value for k in FlagKind} else None
    resolved = request.args.get("show") == "resolved"
    page = parse_id(request.args.get("page")) or 1
    pager = db.paginate(
        flag_review.flags_query(kind, resolved=resolved),
        page=page,
        per_page=PAGE_SIZE,
        error_out=False,
    )
    return render_template(
        "staff/flags.html",
        pager=pager,
        kind=kind,
        resolved=resolved,
        kinds=list(FlagKind),
        counts=flag_review.open_flag_counts(),
    )


def _flag(flag_id: int) -> PatientFlag:
    found = db.session.get(PatientFlag, flag_id)
    if found is None:
        abort(404)
    return found


def _thread_or_page(flag_id: int) -> ResponseReturnValue:
    if htmx:
        db.session.expire_all()
        flag = _flag(flag_id)
        return render_template(
            "staff/_flag_thread.html", flag=flag, thread=flag_review.thread(flag), fragment=True
        )
    return back_to(url_for("staff.flags_review", flag_id=flag_id))


@bp.get("/flags/<id:flag_id>")
def flags_review(flag_id: int) -> ResponseReturnValue:
    """One flag: what it says, its thread, and the patient's history beside it."""
    flag = _flag(flag_id)
    return render_template(
        "staff/flag.html",
        flag=flag,
        thread=flag_review.thread(flag),
        history=flag_review.patient_history(flag.patient),
        help=FLAG_HELP.get(flag.kind, ""),
        tier=patient_admin.tier_of(flag.patient),
        requirement=patient_admin.staff_requirement(flag.patient),
        effective_labels=EFFECTIVE_LABELS,
        tiers=TIER_LABELS,
    )


@bp.post("/flags/<id:flag_id>/note")
def flags_note(flag_id: int) -> ResponseReturnValue:
    """Add a note to the flag's thread."""
    _flag(flag_id)
    note = request.form.get("note", "")
    perform(lambda: flag_review.annotate(flag_id, note, actor()) and "Note added.")
    return _thread_or_page(flag_id)


@bp.post("/flags/<id:flag_id>/resolve")
def flags_resolve(flag_id: int) -> ResponseReturnValue:
    """Mark the flag dealt with, saying how."""
    flag = _flag(flag_id)
    name = flag.patient.name
    notes = request.form.get("notes", "")
    perform(lambda: flag_review.resolve(flag_id, notes, actor()) and f"{name}'s flag is resolved.")
    return _thread_or_page(flag_id)
