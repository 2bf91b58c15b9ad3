"""API endpoints the practice's system syncs with: practitioners, slot and appointment lists."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, url_for

from portal.db import db
from portal.models import Practitioner
from portal.services import listings
from portal.services.catalogue import PractitionerInput, save_practitioner
from portal.web.api.auth import api_actor
from portal.web.api.blueprint import bp
from portal.web.api.schemas import (
    AppointmentQuery,
    PractitionerIn,
    PractitionerPatch,
    SlotQuery,
    parse_query,
)
from portal.web.api.serializers import appointment_json, practitioner_json, slot_json
from portal.web.api.views import body, created, get_or_404


@bp.post("/practitioners")
def create_practitioner() -> tuple[Response, int, dict[str, str]]:
    data = body(PractitionerIn)
    practitioner = save_practitioner(
        PractitionerInput(data.name, data.location_id, data.service_ids or [], data.active),
        api_actor(),
    )
    payload = practitioner_json(practitioner)
    db.session.commit()
    return created(payload, url_for("api.list_practitioners"))


@bp.patch("/practitioners/<id:practitioner_id>")
def update_practitioner(practitioner_id: int) -> Response:
    data = body(PractitionerPatch)
    practitioner = get_or_404(Practitioner, practitioner_id)
    change = PractitionerInput(
        name=data.name if data.name is not None else practitioner.name,
        location_id=data.location_id or practitioner.location_id,
        service_ids=data.service_ids,
        active=practitioner.active if data.active is None else data.active,
    )
    payload = practitioner_json(save_practitioner(change, api_actor(), practitioner))
    db.session.commit()
    return jsonify(payload)


def _paged(page: listings.Page, serialize: Any) -> Response:
    return jsonify(
        items=[serialize(item) for item in page.items],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
    )


@bp.get("/slots")
def list_slots() -> Response:
    query = parse_query(SlotQuery, request.args.to_dict())
    page = listings.slots_page(
        start=query.from_,
        end=query.to,
        status=query.status,
        practitioner_id=query.practitioner_id,
        location_id=query.location_id,
        page=query.page,
        per_page=query.per_page,
    )
    return _paged(page, slot_json)


@bp.get("/appointments")
def list_appointments() -> Response:
    query = parse_query(AppointmentQuery, request.args.to_dict())
    page = listings.appointments_page(
        patient_id=query.patient_id,
        slot_id=query.slot_id,
        status=query.status,
        start=query.from_,
        end=query.to,
        page=query.page,
        per_page=query.per_page,
    )
    return _paged(page, appointment_json)
