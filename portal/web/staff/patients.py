"""``/staff/patients``: find, add and edit patients; their page shows everything about them.

The patient page lists appointments, offers, every message with each channel attempt,
charges, flags and waitlist entries, with the actions in place: edit the contact
details, text opt-out, payment tier, and the waitlist entries.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db, now_utc
from portal.models import Location, Patient
from portal.models.enums import TimezoneSource
from portal.services import patient_admin
from portal.services.errors import DomainError
from portal.services.notify.timeline import (
    PAGE_SIZE,
    open_flags_by_patient,
    patient_query,
    patient_timeline,
)
from portal.services.patient_admin import EFFECTIVE_LABELS, TIER_LABELS, ContactChange, Tier
from portal.services.patients import DuplicatePhone, create_patient, set_timezone
from portal.services.phones import known_zones
from portal.services.presentation import zone_choices
from portal.services.reminders import reminders_by_appointment
from portal.web.ids import parse_id
from portal.web.staff.actions import actor, back_to, perform
from portal.web.staff.blueprint import bp
from portal.web.staff.patient_forms import PatientForm
from portal.web.staff.waitlist import summarize
from portal.web.transaction import commit_or_conflict

#: Which form field a service's refusal is about.
FIELD_FOR_CODE = {
    "invalid_phone": "phone",
    "duplicate_phone": "phone",
    "invalid_email": "email",
    "invalid_timezone": "timezone",
    "invalid_name": "name",
}


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


def _patient(patient_id: int) -> Patient:
    found = db.session.get(Patient, patient_id)
    if found is None:
        abort(404)
    return found


@bp.get("/patients/<id:patient_id>")
def patient(patient_id: int) -> ResponseReturnValue:
    """Show one patient's record and timeline, with the actions on it."""
    found = _patient(patient_id)
    common, others = zone_choices(now_utc(), found.timezone)
    return render_template(
        "staff/patient.html",
        t=patient_timeline(found),
        reminders=reminders_by_appointment(found.id),
        zone_common=common,
        zone_others=others,
        charges=patient_admin.charges_for(found),
        channels=patient_admin.channel_states(found),
        tier=patient_admin.tier_of(found),
        requirement=patient_admin.staff_requirement(found),
        effective_labels=EFFECTIVE_LABELS,
        tiers=TIER_LABELS,
        summarize=summarize,
    )


@bp.post("/patients/<id:patient_id>/timezone")
def patient_timezone(patient_id: int) -> ResponseReturnValue:
    """Set the patient's time zone (explicit), or "detect" it again from phone/location."""
    _patient(patient_id)
    chosen = (request.form.get("timezone") or "").strip()[:64]
    who = actor()

    def change() -> Patient:
        found = db.session.get(Patient, patient_id)
        return set_timezone(found, None if chosen == "detect" else chosen, actor=who)

    try:
        patient = commit_or_conflict(change)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        how = "detected" if patient.timezone_source != TimezoneSource.EXPLICIT else "set"
        flash(f"Time zone {how}: {patient.timezone}. Upcoming reminders follow it.", "success")
    return redirect(url_for("staff.patient", patient_id=patient_id), 303)


def _render_form(
    form: PatientForm, patient: Patient | None, duplicates: list[Patient], status: int = 200
) -> ResponseReturnValue:
    return (
        render_template(
            "staff/patient_form.html",
            form=form,
            patient=patient,
            duplicates=duplicates,
            zones=sorted(known_zones()),
        ),
        status,
    )


def _change(form: PatientForm) -> ContactChange:
    location_id = form.home_location_id.data
    return ContactChange(
        name=form.name.data or "",
        phone=form.phone.data or "",
        email=form.email.data or None,
        timezone=(form.timezone.data or "").strip() or None,
        home_location=db.session.get(Location, location_id) if location_id else None,
    )


def _refused(form: PatientForm, patient: Patient | None, exc: DomainError) -> ResponseReturnValue:
    db.session.rollback()
    field = getattr(form, FIELD_FOR_CODE.get(exc.code, ""), None)
    duplicates = exc.patients if isinstance(exc, DuplicatePhone) else []
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        flash(exc.message, "error")
    return _render_form(form, patient, duplicates, status=409 if duplicates else 422)


@bp.route("/patients/new", methods=["GET", "POST"])
def patients_new() -> ResponseReturnValue:
    """Register a patient: the phone is validated, the time zone resolved and recorded."""
    form = PatientForm()
    form.fill_choices()
    if request.method == "GET" or not form.validate():
        return _render_form(form, None, [], status=200 if request.method == "GET" else 422)
    change = _change(form)
    try:
        created = commit_or_conflict(
            lambda: create_patient(
                name=change.name,
                phone=change.phone,
                email=change.email,
                timezone=change.timezone,
                home_location=change.home_location,
                actor=actor(),
                allow_duplicate_phone=bool(form.confirm_duplicate.data),
            )
        )
    except DomainError as exc:
        return _refused(form, None, exc)
    flash(
        f"{created.name} was added. Put them on the waitlist below if they are waiting for a time.",
        "success",
    )
    return redirect(url_for("staff.patient", patient_id=created.id), 303)


@bp.route("/patients/<id:patient_id>/edit", methods=["GET", "POST"])
def patients_edit(patient_id: int) -> ResponseReturnValue:
    """Change a patient's name, phone, email, time zone or home clinic."""
    found = _patient(patient_id)
    form = PatientForm(obj=found if request.method == "GET" else None)
    form.fill_choices()
    if request.method == "GET":
        form.phone.data = found.phone_e164 or found.phone_raw
        form.timezone.data = patient_admin.timezone_choice(found) or ""
        return _render_form(form, found, [])
    if not form.validate():
        return _render_form(form, found, [], status=422)
    change = _change(form)
    allow = bool(form.confirm_duplicate.data)
    try:
        changed = commit_or_conflict(
            lambda: patient_admin.update_patient(
                _patient(patient_id), change, actor(), allow_duplicate_phone=allow
            )
        )
    except DomainError as exc:
        return _refused(form, found, exc)
    flash("Saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("staff.patient", patient_id=patient_id), 303)


@bp.post("/patients/<id:patient_id>/texts")
def patients_texts(patient_id: int) -> ResponseReturnValue:
    """Record that the patient stopped, or asked to restart, texts and calls."""
    _patient(patient_id)
    stop = request.form.get("stop") == "1"
    note = request.form.get("note", "")

    def run() -> str:
        changed = patient_admin.set_sms_opt_out(_patient(patient_id), stop, note, actor())
        if not changed:
            return ""
        return "Texts and calls are stopped." if stop else "Texts and calls are on again."

    perform(run)
    return back_to(url_for("staff.patient", patient_id=patient_id))


@bp.post("/patients/<id:patient_id>/tier")
def patients_tier(patient_id: int) -> ResponseReturnValue:
    """Change what the patient must pay before a booking completes (with a reason)."""
    _patient(patient_id)
    raw = request.form.get("tier", "")
    reason = request.form.get("reason", "")

    def run() -> str:
        try:
            tier = Tier(raw)
        except ValueError:
            raise DomainError("Choose a tier.", code="invalid_tier") from None
        if not patient_admin.set_tier(_patient(patient_id), tier, reason, actor()):
            return "The tier was already that."
        effective = EFFECTIVE_LABELS[patient_admin.tier_of(_patient(patient_id))]
        return f"Staff requirement changed. Payment before booking now: {effective.lower()}."

    perform(run)
    return back_to(url_for("staff.patient", patient_id=patient_id))
