"""API endpoints that book, release and check in (all through the atomic booking path)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify, request, url_for

from portal.db import db
from portal.models import Appointment, Offer, Patient, Slot
from portal.models.enums import AppointmentSource
from portal.services.alternatives import find_alternatives
from portal.services.appointments import check_in, complete
from portal.services.booking import SlotTaken, book_slot
from portal.services.cancellation import cancel_for_patient
from portal.services.release import release_slot
from portal.services.reschedule import reschedule_appointment
from portal.services.settings import settings
from portal.web.api.auth import api_actor
from portal.web.api.blueprint import bp, error_response
from portal.web.api.schemas import AppointmentIn, CancelIn, ReleaseIn, RescheduleIn
from portal.web.api.serializers import appointment_json, offer_json, slot_json
from portal.web.api.views import body, created, get_or_404, referenced
from portal.web.transaction import commit_or_conflict


@bp.post("/appointments")
def book_appointment() -> tuple[Response, int, dict[str, str]] | Response:
    data = body(AppointmentIn)
    referenced(Slot, data.slot_id, "slot")
    referenced(Patient, data.patient_id, "patient")
    actor = api_actor()

    def book() -> dict[str, Any]:
        found = db.session.get(Patient, data.patient_id)
        appointment = book_slot(data.slot_id, found, source=AppointmentSource.API, actor=actor)
        return appointment_json(appointment)

    try:
        payload = commit_or_conflict(book)
    except SlotTaken:
        # Alternatives are looked up after the rollback, outside the failed transaction.
        slot, patient = db.session.get(Slot, data.slot_id), db.session.get(Patient, data.patient_id)
        alternatives = [
            {"slot": slot_json(a.slot), "score": a.score, "reasons": a.reasons}
            for a in find_alternatives(patient, slot)
        ]
        return error_response(
            "slot_filled",
            "This slot was just taken by someone else.",
            409,
            alternatives=alternatives,
        )
    return created(payload, url_for("api.get_appointment", appointment_id=payload["id"]))


@bp.get("/appointments/<id:appointment_id>")
def get_appointment(appointment_id: int) -> Response:
    return jsonify(appointment_json(get_or_404(Appointment, appointment_id)))


@bp.post("/appointments/<id:appointment_id>/reschedule")
def reschedule_view(appointment_id: int) -> Response | tuple[Response, int]:
    data = body(RescheduleIn)
    get_or_404(Appointment, appointment_id)
    referenced(Slot, data.slot_id, "slot")
    actor = api_actor()

    def move() -> dict[str, Any]:
        moved = reschedule_appointment(
            appointment_id, data.slot_id, actor, accepted_fee_cents=data.accept_fee_cents
        )
        return appointment_json(moved)

    try:
        return jsonify(commit_or_conflict(move))
    except SlotTaken:
        appointment = db.session.get(Appointment, appointment_id)
        wanted = db.session.get(Slot, data.slot_id)
        alternatives = [
            {"slot": slot_json(a.slot), "score": a.score, "reasons": a.reasons}
            for a in find_alternatives(
                appointment.patient,
                wanted,
                now=None,
                horizon=timedelta(days=settings().reschedule_horizon_days),
                ignoring_appointment_id=appointment.id,
            )
        ]
        return error_response(
            "slot_filled",
            "That slot was just taken; the appointment stays where it was.",
            409,
            alternatives=alternatives,
        )


@bp.post("/appointments/<id:appointment_id>/check-in")
def check_in_appointment(appointment_id: int) -> Response:
    get_or_404(Appointment, appointment_id)
    actor = api_actor()

    def arrive() -> dict[str, Any]:
        return appointment_json(check_in(db.session.get(Appointment, appointment_id), actor))

    return jsonify(commit_or_conflict(arrive))


@bp.post("/appointments/<id:appointment_id>/complete")
def complete_appointment(appointment_id: int) -> Response:
    get_or_404(Appointment, appointment_id)
    actor = api_actor()

    def done() -> dict[str, Any]:
        return appointment_json(complete(db.session.get(Appointment, appointment_id), actor))

    return jsonify(commit_or_conflict(done))


@bp.post("/appointments/<id:appointment_id>/cancel")
def cancel_appointment(appointment_id: int) -> Response:
    data = body(CancelIn)
    get_or_404(Appointment, appointment_id)
    actor = api_actor()

    def cancel() -> dict[str, Any]:
        done = cancel_for_patient(
            appointment_id, actor, reason=data.reason, waive_fee=data.waive_fee
        )
        return appointment_json(done.appointment)

    return jsonify(commit_or_conflict(cancel))


@bp.post("/slots/<id:slot_id>/release")
def release(slot_id: int) -> Response:
    reason = body(ReleaseIn).reason if request.content_length else None
    get_or_404(Slot, slot_id)
    actor = api_actor()
    return jsonify(
        commit_or_conflict(lambda: slot_json(release_slot(slot_id, actor, reason=reason)))
    )


@bp.get("/slots/<id:slot_id>/offers")
def slot_offers(slot_id: int) -> Response:
    get_or_404(Slot, slot_id)
    offers = db.session.scalars(
        sa.select(Offer).where(Offer.slot_id == slot_id).order_by(Offer.wave, Offer.id)
    )
    return jsonify([offer_json(o) for o in offers])
