"""``/staff/waitlist``: list and filter entries; add, edit, pause, resume, remove.

Adding for a patient who already waits for that service there edits their entry
(``waitlist_staff.save_entry``). Pause, resume and remove answer htmx with the entry's
re-rendered row and plain forms with a 303 back to the list (filters kept).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, flash, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db
from portal.extensions import htmx
from portal.models import Location, Patient, Practitioner, Service, WaitlistEntry
from portal.models.enums import WaitlistStatus
from portal.services import staffops, waitlist_staff
from portal.services.errors import DomainError
from portal.services.presentation import weekly_window, window_elsewhere
from portal.services.waitlist_staff import EntryFilters, Preferences
from portal.web.ids import parse_id
from portal.web.staff.actions import actor, back_to, perform
from portal.web.staff.blueprint import bp
from portal.web.staff.waitlist_forms import EntryForm, WindowsError, window_rows, windows_from
from portal.web.transaction import commit_or_conflict

PAGE_SIZE = 25
STATUS_CHOICES = [s.value for s in WaitlistStatus]


def _filters() -> EntryFilters:
    raw_status = request.args.get("status", "active")
    status = WaitlistStatus(raw_status) if raw_status in STATUS_CHOICES else None
    priority = request.args.get("priority") or None
    return EntryFilters(
        service_id=parse_id(request.args.get("service")),
        location_id=parse_id(request.args.get("location")),
        status=status,
        patient=request.args.get("patient", "")[:100],
        priority=priority if priority in waitlist_staff.PRIORITY_FILTERS else None,
    )


def _choices() -> dict[str, Any]:
    return {
        "services": list(db.session.scalars(sa.select(Service).order_by(Service.name))),
        "locations": list(db.session.scalars(sa.select(Location).order_by(Location.name))),
    }


@bp.get("/waitlist")
def waitlist() -> ResponseReturnValue:
    """Entries matching the filters, highest priority and longest waiting first."""
    filters = _filters()
    page = parse_id(request.args.get("page")) or 1
    pager = db.paginate(
        waitlist_staff.entries_query(filters), page=page, per_page=PAGE_SIZE, error_out=False
    )
    return render_template(
        "staff/waitlist.html",
        pager=pager,
        filters=filters,
        statuses=STATUS_CHOICES,
        summarize=summarize,
        **_choices(),
    )


def summarize(entry: WaitlistEntry) -> list[str]:
    """Short lines describing what the entry wants (dates, hours, preferences)."""
    lines = []
    if entry.earliest or entry.latest:
        first = entry.earliest.strftime("%b %-d") if entry.earliest else "now"
        last = entry.latest.strftime("%b %-d, %Y") if entry.latest else "any time"
        lines.append(f"{first} – {last}")
    if entry.windows:
        lines.append("; ".join(weekly_window(w) for w in entry.windows[:3]))
        if len(entry.windows) > 3:
            lines[-1] += f" (+{len(entry.windows) - 3} more)"
    else:
        lines.append("Any day, any time")
    if entry.preferred_practitioner is not None:
        lines.append(f"Prefers {entry.preferred_practitioner.name}")
    if entry.short_notice_ok:
        lines.append("Short notice OK")
    return lines


# --- add and edit --------------------------------------------------------------------


def _entry(entry_id: int) -> WaitlistEntry:
    found = db.session.get(WaitlistEntry, entry_id)
    if found is None:
        abort(404)
    return found


def _render_form(
    form: EntryForm,
    *,
    patient: Patient | None,
    entry: WaitlistEntry | None,
    windows: list[dict[str, Any]],
    error: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    clinic = entry.location if entry else (patient.home_location if patient else None)
    zone = patient.timezone if patient else None
    clinic_hours = [
        (w, window_elsewhere(w, zone, clinic.timezone)) if zone and clinic else (w, None)
        for w in windows
    ]
    query = request.args.get("q", "")
    return (
        render_template(
            "staff/waitlist_form.html",
            form=form,
            patient=patient,
            entry=entry,
            rows=window_rows(windows),
            clinic_hours=clinic_hours,
            clinic=clinic,
            error=error,
            q=query,
            matches=staffops.search_patients(query) if patient is None else [],
        ),
        status,
    )


def _preferences(form: EntryForm, windows: list[dict[str, Any]]) -> Preferences:
    practitioner_id = form.preferred_practitioner_id.data
    return Preferences(
        preferred_practitioner=db.session.get(Practitioner, practitioner_id)
        if practitioner_id
        else None,
        earliest=form.earliest.data,
        latest=form.latest.data,
        windows=windows,
        preferred_time=form.preferred_time.data,
        short_notice_ok=bool(form.short_notice_ok.data),
        priority=form.priority.data or 0,
    )


@bp.route("/waitlist/new", methods=["GET", "POST"])
def waitlist_new() -> ResponseReturnValue:
    """Put a patient on the waitlist (or update the entry they already have)."""
    patient_id = parse_id(request.values.get("patient_id"))
    patient = db.session.get(Patient, patient_id) if patient_id else None
    form = EntryForm()
    form.fill_choices()
    if request.method == "GET":
        if patient is not None and patient.home_location_id:
            form.location_id.data = patient.home_location_id
        return _render_form(form, patient=patient, entry=None, windows=[])
    try:
        windows = windows_from(request.form)
    except WindowsError as exc:
        return _render_form(
            form, patient=patient, entry=None, windows=[], error=str(exc), status=422
        )
    if patient is None:
        return _render_form(
            form,
            patient=None,
            entry=None,
            windows=windows,
            error="Choose a patient first.",
            status=422,
        )
    form.validate()
    if not form.service_id.data:
        form.service_id.errors = ["Choose a service."]
    if not form.location_id.data:
        form.location_id.errors = ["Choose a location."]
    if any(f.errors for f in form):
        return _render_form(form, patient=patient, entry=None, windows=windows, status=422)
    service = db.session.get(Service, form.service_id.data)
    location = db.session.get(Location, form.location_id.data)
    prefs = _preferences(form, windows)
    try:
        _saved, created = commit_or_conflict(
            lambda: waitlist_staff.save_entry(patient, service, location, prefs, actor())
        )
    except DomainError as exc:
        return _render_form(
            form, patient=patient, entry=None, windows=windows, error=exc.message, status=422
        )
    if created:
        flash(
            f"{patient.name} is on the waitlist for {service.name} at {location.name}.", "success"
        )
    else:
        flash(
            f"{patient.name} was already waiting for {service.name} at {location.name}: "
            "their entry was updated.",
            "success",
        )
    return back_to(url_for("staff.patient", patient_id=patient.id))


@bp.route("/waitlist/<id:entry_id>/edit", methods=["GET", "POST"])
def waitlist_edit(entry_id: int) -> ResponseReturnValue:
    """Change an entry's preferences."""
    entry = _entry(entry_id)
    form = EntryForm(obj=entry if request.method == "GET" else None)
    form.fill_choices()
    form.service_id.data, form.location_id.data = entry.service_id, entry.location_id
    if request.method == "GET":
        return _render_form(
            form, patient=entry.patient, entry=entry, windows=list(entry.windows or [])
        )
    try:
        windows = windows_from(request.form)
    except WindowsError as exc:
        return _render_form(
            form,
            patient=entry.patient,
            entry=entry,
            windows=list(entry.windows or []),
            error=str(exc),
            status=422,
        )
    form.validate()
    form.service_id.errors = form.location_id.errors = []
    if any(f.errors for f in form):
        return _render_form(form, patient=entry.patient, entry=entry, windows=windows, status=422)
    prefs = _preferences(form, windows)
    try:
        commit_or_conflict(lambda: waitlist_staff.update_entry(entry_id, prefs, actor()))
    except DomainError as exc:
        db.session.expire_all()
        return _render_form(
            form,
            patient=entry.patient,
            entry=_entry(entry_id),
            windows=windows,
            error=exc.message,
            status=422,
        )
    flash(f"Saved {entry.patient.name}'s waitlist entry.", "success")
    return back_to(url_for("staff.patient", patient_id=entry.patient_id))


# --- pause, resume, remove -----------------------------------------------------------


def _status_change(entry_id: int, action: Any, done: str) -> ResponseReturnValue:
    entry = _entry(entry_id)
    name = entry.patient.name

    def run() -> str:
        result = action(entry_id, actor())
        withdrawn = result[1] if isinstance(result, tuple) else 0
        extra = (
            f" {withdrawn} pending offer{'s' if withdrawn != 1 else ''} withdrawn."
            if withdrawn
            else ""
        )
        return f"{name}'s entry {done}.{extra}"

    perform(run)
    if htmx:
        db.session.expire_all()
        return render_template(
            "staff/_waitlist_row.html", entry=_entry(entry_id), summarize=summarize, fragment=True
        )
    return back_to(url_for("staff.waitlist"))


@bp.post("/waitlist/<id:entry_id>/pause")
def waitlist_pause(entry_id: int) -> ResponseReturnValue:
    """Stop offering to the entry for now (its pending offers are withdrawn, quietly)."""
    return _status_change(entry_id, waitlist_staff.pause_entry, "is paused")


@bp.post("/waitlist/<id:entry_id>/resume")
def waitlist_resume(entry_id: int) -> ResponseReturnValue:
    """Offer to a paused or unreachable entry again."""
    return _status_change(entry_id, waitlist_staff.resume_entry, "is active again")


@bp.post("/waitlist/<id:entry_id>/remove")
def waitlist_remove(entry_id: int) -> ResponseReturnValue:
    """Take the entry off the waitlist for good."""
    return _status_change(entry_id, waitlist_staff.remove_entry, "was removed")
