"""``/staff/patients``: find a patient; their page shows the full timeline.

The timeline lists appointments, offers and every message with each channel attempt
(channel, status, times, failure reason, fallback link) and the receipts behind it.
"""

from __future__ import annotations

from flask import abort, render_template, request
from flask.typing import ResponseReturnValue

from portal.db import db
from portal.models import Patient
from portal.services.notify.timeline import (
    PAGE_SIZE,
    open_flags_by_patient,
    patient_query,
    patient_timeline,
)
from portal.web.ids import parse_id
from portal.web.staff.blueprint import bp


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
    return render_template("staff/patient.html", t=patient_timeline(found))
