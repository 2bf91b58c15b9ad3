"""``/staff/settings/catalogue`` (admins): locations, practitioners and services.

Each form calls one ``catalogue`` service; the API's practitioner endpoints call the
same ones, so a change from the practice's system and one made here look alike.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db
from portal.models import Location, Practitioner, Service
from portal.services import catalogue
from portal.services.catalogue import LocationInput, PractitionerInput, ServiceInput
from portal.services.errors import DomainError
from portal.services.phones import known_zones
from portal.services.presentation import money, parse_money
from portal.web.ids import parse_id
from portal.web.staff.actions import actor
from portal.web.staff.blueprint import admin_required, bp
from portal.web.staff.waitlist_forms import WindowsError, window_rows, windows_from
from portal.web.transaction import commit_or_conflict


@bp.get("/settings/catalogue")
@admin_required
def settings_catalogue() -> ResponseReturnValue:
    """Every location, practitioner and service, with links to edit them."""
    return render_template(
        "staff/catalogue.html",
        locations=list(db.session.scalars(sa.select(Location).order_by(Location.name))),
        practitioners=list(
            db.session.scalars(
                sa.select(Practitioner).order_by(Practitioner.active.desc(), Practitioner.name)
            )
        ),
        services=list(
            db.session.scalars(sa.select(Service).order_by(Service.active.desc(), Service.name))
        ),
    )


def _saved(label: str) -> ResponseReturnValue:
    flash(f"Saved {label}.", "success")
    return redirect(url_for("staff.settings_catalogue"), 303)


def _form_page(
    kind: str, row: Any, values: dict[str, Any], error: str | None, status: int
) -> ResponseReturnValue:
    context: dict[str, Any] = {"kind": kind, "row": row, "values": values, "error": error}
    if kind == "location":
        context["zones"] = sorted(
            z
            for z in known_zones()
            if "/" in z and not z.startswith(("Etc/", "posix/", "right/", "SystemV/"))
        )
        context["rows"] = window_rows(values.get("opening_hours") or [])
    if kind == "practitioner":
        context["locations"] = list(db.session.scalars(sa.select(Location).order_by(Location.name)))
        context["services"] = list(db.session.scalars(sa.select(Service).order_by(Service.name)))
    if kind == "service":
        context["categories"] = catalogue.categories()
    return render_template("staff/catalogue_form.html", **context), status


# --- locations -----------------------------------------------------------------------


def _location_values(row: Location | None) -> dict[str, Any]:
    if row is None:
        return {"name": "", "timezone": "", "phone": "", "address": "", "opening_hours": []}
    return {
        "name": row.name,
        "timezone": row.timezone,
        "phone": row.phone,
        "address": row.address,
        "opening_hours": row.opening_hours,
    }


@bp.route("/settings/locations/new", methods=["GET", "POST"], defaults={"location_id": None})
@bp.route("/settings/locations/<id:location_id>", methods=["GET", "POST"])
@admin_required
def settings_location(location_id: int | None) -> ResponseReturnValue:
    """Add or edit a location: name, time zone, phone, address, opening hours."""
    row = db.session.get(Location, location_id) if location_id else None
    if location_id and row is None:
        abort(404)
    if request.method == "GET":
        return _form_page("location", row, _location_values(row), None, 200)
    values = {k: request.form.get(k, "") for k in ("name", "timezone", "phone", "address")}
    try:
        values["opening_hours"] = windows_from(request.form)
    except WindowsError as exc:
        return _form_page("location", row, values | {"opening_hours": []}, str(exc), 422)
    data = LocationInput(**values)
    try:
        saved = commit_or_conflict(
            lambda: catalogue.save_location(
                data, actor(), db.session.get(Location, location_id) if location_id else None
            )
        )
    except DomainError as exc:
        return _form_page("location", row, values, exc.message, 422)
    return _saved(saved.name)


# --- practitioners -------------------------------------------------------------------


@bp.route(
    "/settings/practitioners/new", methods=["GET", "POST"], defaults={"practitioner_id": None}
)
@bp.route("/settings/practitioners/<id:practitioner_id>", methods=["GET", "POST"])
@admin_required
def settings_practitioner(practitioner_id: int | None) -> ResponseReturnValue:
    """Add or edit a practitioner: where they work, what they perform, whether active."""
    row = db.session.get(Practitioner, practitioner_id) if practitioner_id else None
    if practitioner_id and row is None:
        abort(404)
    if request.method == "GET":
        values = {
            "name": row.name if row else "",
            "location_id": row.location_id if row else None,
            "service_ids": [s.id for s in row.services] if row else [],
            "active": row.active if row else True,
        }
        return _form_page("practitioner", row, values, None, 200)
    service_ids = [i for i in (parse_id(v) for v in request.form.getlist("service_ids")) if i]
    values = {
        "name": request.form.get("name", ""),
        "location_id": parse_id(request.form.get("location_id")),
        "service_ids": service_ids,
        "active": request.form.get("active") == "1",
    }
    if values["location_id"] is None:
        return _form_page("practitioner", row, values, "Choose where they work.", 422)
    data = PractitionerInput(**values)
    try:
        saved = commit_or_conflict(
            lambda: catalogue.save_practitioner(
                data,
                actor(),
                db.session.get(Practitioner, practitioner_id) if practitioner_id else None,
            )
        )
    except DomainError as exc:
        return _form_page("practitioner", row, values, exc.message, 422)
    return _saved(saved.name)


# --- services ------------------------------------------------------------------------


@bp.route("/settings/services/new", methods=["GET", "POST"], defaults={"service_id": None})
@bp.route("/settings/services/<id:service_id>", methods=["GET", "POST"])
@admin_required
def settings_service(service_id: int | None) -> ResponseReturnValue:
    """Add or edit a service: category, duration, price (typed in dollars, kept in cents)."""
    row = db.session.get(Service, service_id) if service_id else None
    if service_id and row is None:
        abort(404)
    if request.method == "GET":
        values = {
            "name": row.name if row else "",
            "category": row.category if row else "",
            "duration_minutes": row.duration_minutes if row else 60,
            "min_fill_minutes": row.min_fill_minutes if row else 30,
            "price": money(row.price_cents).lstrip("$") if row else "",
            "active": row.active if row else True,
        }
        return _form_page("service", row, values, None, 200)
    values = {
        k: request.form.get(k, "")
        for k in ("name", "category", "duration_minutes", "min_fill_minutes", "price")
    }
    values["active"] = request.form.get("active") == "1"
    try:
        price_cents = parse_money(values["price"])
        duration, min_fill = int(values["duration_minutes"]), int(values["min_fill_minutes"])
    except ValueError as exc:
        message = str(exc) if "dollars" in str(exc) else "Durations are whole minutes."
        return _form_page("service", row, values, message, 422)
    data = ServiceInput(
        values["name"], values["category"], duration, price_cents, min_fill, values["active"]
    )
    try:
        saved = commit_or_conflict(
            lambda: catalogue.save_service(
                data, actor(), db.session.get(Service, service_id) if service_id else None
            )
        )
    except DomainError as exc:
        return _form_page("service", row, values, exc.message, 422)
    return _saved(saved.name)
