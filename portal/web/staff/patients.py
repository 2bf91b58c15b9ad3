"""``/staff/patients``: find a patient; their page shows the full timeline.

The timeline lists appointments, offers and every message with each channel attempt
(channel, status, times, failure reason, fallback link) and the receipts behind it.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal.db import db, now_utc
from portal.models import Patient
from portal.models.enums import TimezoneSource
from portal.services.audit import Actor
from portal.services.errors import DomainError
from portal.services.notify.timeline import (
    PAGE_SIZE,
    open_flags_by_patient,
    patient_query,
    patient_timeline,
)
from portal.services.patients import set_timezone
from portal.services.presentation import zone_choices
from portal.services.reminders import reminders_by_appointment
from portal.web.ids import parse_id
from portal.web.staff.blueprint import bp
from portal.web.transaction import commit_or_conflict


@bp.get("/patients")
def patients() -> ResponseReturnValue:
    """List patients, optionally filtered by name, email or phone."""
    query = request.args.get("q", "")[:100]
    page = parse_id(request.args.get("page")) or 1
    pager = db.paginate(patient_query(query), page=page, per_page=PAGE_SIZE, error_out=False)
    return render_template(
        "staff/patients.html",
        q=query.strip(),
        pager=pager,
        flags=open_flags_by_patient([p.id for p in pager.items]),
    )


@bp.get("/patients/<id:patient_id>")
def patient(patient_id: int) -> ResponseReturnValue:
    """Show one patient's appointments, offers and every notification attempt."""
    found = db.session.get(Patient, patient_id)
    if found is None:
        abort(404)
    common, others = zone_choices(now_utc(), found.timezone)
    return render_template(
        "staff/patient.html",
        t=patient_timeline(found),
        reminders=reminders_by_appointment(found.id),
        zone_common=common,
        zone_others=others,
    )


@bp.post("/patients/<id:patient_id>/timezone")
def patient_timezone(patient_id: int) -> ResponseReturnValue:
    """Set the patient's time zone (explicit), or "detect" it again from phone/location."""
    if db.session.get(Patient, patient_id) is None:
        abort(404)
    chosen = (request.form.get("timezone") or "").strip()[:64]
    actor = Actor.staff(current_user)

    def change() -> Patient:
        found = db.session.get(Patient, patient_id)
        return set_timezone(found, None if chosen == "detect" else chosen, actor=actor)

    try:
        patient = commit_or_conflict(change)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        how = "detected" if patient.timezone_source != TimezoneSource.EXPLICIT else "set"
        flash(f"Time zone {how}: {patient.timezone}. Upcoming reminders follow it.", "success")
    return redirect(url_for("staff.patient", patient_id=patient_id), 303)
