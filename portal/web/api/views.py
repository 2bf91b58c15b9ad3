"""API endpoints: parse the body, load what it names, call one service, commit once.

Document every endpoint in ``openapi.OPERATIONS`` too (a test checks they match).
"""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Response, jsonify, request, url_for

from portal.db import db
from portal.models import Location, Patient, Practitioner, Service, Slot
from portal.services.errors import DomainError, NotFound, ValidationFailed
from portal.services.patients import create_patient, set_timezone
from portal.services.slots import create_slot
from portal.services.waitlist import default_location, join_waitlist
from portal.web.api.auth import api_actor
from portal.web.api.blueprint import bp
from portal.web.api.schemas import M, PatientIn, PatientPatch, SlotIn, WaitlistIn, parse_body
from portal.web.api.serializers import (
    entry_json,
    location_json,
    patient_json,
    practitioner_json,
    service_json,
    slot_json,
)
from portal.web.ids import parse_id

T = TypeVar("T")


def body(model: type[M]) -> M:
    """Return the request's JSON body validated against ``model``."""
    return parse_body(model, request.get_data(cache=False), request.mimetype)


def referenced(model: type[T], ident: int, label: str) -> T:
    """Load a row a body refers to, or refuse with 422 ``unknown_<label>``."""
    row = db.session.get(model, ident)
    if row is None:
        raise DomainError(f"There is no {label} with id {ident}.", code=f"unknown_{label}")
    return row


def get_or_404(model: type[T], ident: int) -> T:
    """Load the row a URL names (the ``id`` converter checked its range), or 404."""
    row = db.session.get(model, ident)
    if row is None:
        raise NotFound(f"There is no {model.__tablename__} with id {ident}.")  # type: ignore[attr-defined]
    return row


def query_id(name: str) -> int | None:
    """Return an optional integer id from the query string (422 if malformed)."""
    raw = request.args.get(name)
    if raw is None:
        return None
    ident = parse_id(raw)
    if ident is None:
        raise ValidationFailed(
            [{"loc": ["query", name], "message": "Must be a positive integer id", "type": "id"}]
        )
    return ident


def created(payload: dict[str, Any], location: str) -> tuple[Response, int, dict[str, str]]:
    return jsonify(payload), 201, {"Location": location}


@bp.get("/locations")
def list_locations() -> Response:
    rows = db.session.scalars(sa.select(Location).order_by(Location.id))
    return jsonify([location_json(r) for r in rows])


@bp.get("/practitioners")
def list_practitioners() -> Response:
    stmt = sa.select(Practitioner).order_by(Practitioner.id)
    location_id = query_id("location_id")
    if location_id is not None:
        stmt = stmt.where(Practitioner.location_id == location_id)
    return jsonify([practitioner_json(r) for r in db.session.scalars(stmt)])


@bp.get("/services")
def list_services() -> Response:
    rows = db.session.scalars(sa.select(Service).order_by(Service.id))
    return jsonify([service_json(r) for r in rows])


@bp.post("/patients")
def create_patient_view() -> tuple[Response, int]:
    data = body(PatientIn)
    home = (
        referenced(Location, data.home_location_id, "location") if data.home_location_id else None
    )
    patient = create_patient(
        name=data.name,
        phone=data.phone,
        email=data.email,
        timezone=data.timezone,
        home_location=home,
        actor=api_actor(),
    )
    payload = patient_json(patient)
    db.session.commit()
    return jsonify(payload), 201


@bp.patch("/patients/<id:patient_id>")
def update_patient_view(patient_id: int) -> Response:
    data = body(PatientPatch)
    patient = get_or_404(Patient, patient_id)
    set_timezone(patient, data.timezone, actor=api_actor())
    payload = patient_json(patient)
    db.session.commit()
    return jsonify(payload)


@bp.post("/waitlist")
def join_waitlist_view() -> tuple[Response, int]:
    data = body(WaitlistIn)
    patient = referenced(Patient, data.patient_id, "patient")
    service = referenced(Service, data.service_id, "service")
    if data.location_id is not None:
        location = referenced(Location, data.location_id, "location")
    else:
        location = default_location(patient)
        if location is None:
            raise DomainError(
                "Name a location_id: the patient has no home location.",
                code="location_required",
            )
    practitioner = (
        referenced(Practitioner, data.preferred_practitioner_id, "practitioner")
        if data.preferred_practitioner_id
        else None
    )
    entry, is_new = join_waitlist(
        patient=patient,
        service=service,
        location=location,
        preferred_practitioner=practitioner,
        earliest=data.earliest,
        latest=data.latest,
        windows=[w.model_dump() for w in data.windows] if data.windows is not None else None,
        preferred_time=data.preferred_time,
        short_notice_ok=data.short_notice_ok,
        actor=api_actor(),
    )
    payload = entry_json(entry)
    db.session.commit()
    return jsonify(payload), 201 if is_new else 200


@bp.post("/slots")
def create_slot_view() -> tuple[Response, int, dict[str, str]]:
    data = body(SlotIn)
    practitioner = referenced(Practitioner, data.practitioner_id, "practitioner")
    service = referenced(Service, data.service_id, "service")
    slot = create_slot(
        practitioner=practitioner,
        service=service,
        start_at=data.start_at,
        end_at=data.end_at,
        actor=api_actor(),
    )
    payload = slot_json(slot)
    db.session.commit()
    return created(payload, url_for("api.get_slot", slot_id=payload["id"]))


@bp.get("/slots/<id:slot_id>")
def get_slot(slot_id: int) -> Response:
    return jsonify(slot_json(get_or_404(Slot, slot_id)))
