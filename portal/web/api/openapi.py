"""``GET /api/v1/openapi.json``: an OpenAPI 3.1 document of every endpoint.

Schemas come from the pydantic models in ``schemas.py``; paths are declared in
``OPERATIONS`` (one entry per endpoint; a test checks it matches the blueprint).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, lru_cache
from typing import Any

from flask import Response, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from portal.db import now_utc
from portal.web.api import schemas as s
from portal.web.api.blueprint import bp
from portal.web.api.fields import ID_SCHEMA

_REF = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "Body is not JSON (`invalid_json`)",
    401: "Missing, invalid or revoked token (`unauthorized`)",
    404: "No such object (`not_found`)",
    409: "Conflicts with the current state (e.g. `slot_overlap`)",
    422: "Invalid input: `validation_error` with `fields`, or a rule JSON Schema cannot state",
}
#: Every 422 code an operation can answer besides ``validation_error``: rules the schema
#: cannot express (ids that exist, a real phone number, start before end, the clock).
_DOMAIN_CODES = {
    "invalid_phone": "the phone number is not a valid, dialable number",
    "invalid_email": "the email address is not valid",
    "invalid_timezone": "not an IANA time zone",
    "unknown_location": "no location with that id",
    "unknown_patient": "no patient with that id",
    "unknown_practitioner": "no practitioner with that id",
    "unknown_service": "no service with that id",
    "unknown_slot": "no slot with that id",
    "location_required": "no location_id and the patient has no home location",
    "inactive_service": "the service is no longer offered",
    "inactive_practitioner": "the practitioner is not active",
    "invalid_practitioner": "the preferred practitioner does not work at that location",
    "invalid_date_range": "earliest is after latest",
    "invalid_windows": "a window does not start before it ends",
    "slot_in_past": "start_at is not in the future",
    "slot_too_far_ahead": "start_at is more than two years ahead",
    "invalid_slot_range": "end_at is not after start_at, or more than 12 hours later",
    "same_slot": "the appointment is already in that slot",
    "nonexistent_local_time": "the time is written as a wall-clock time that the clinic's"
    " zone skips that day (a DST change), with the offset of before the change",
    "service_mismatch": "the slot is for another service",
    "invalid_range": "`to` is not after `from` (analytics: `to` before `from`, or more"
    " than 366 days)",
}


@dataclass(frozen=True)
class Op:
    """One documented endpoint."""

    summary: str
    response: type[BaseModel] | None = None
    many: bool = False
    statuses: tuple[int, ...] = (200,)
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, str], ...] = ()  # (name, description), integer ids
    query_model: type[BaseModel] | None = None  # every field a query parameter
    codes: tuple[str, ...] = ()  # 422 codes besides validation_error (keys of _DOMAIN_CODES)
    public: bool = False
    raw_response: dict[str, Any] | None = None
    body_optional: bool = False
    example: Callable[[date], dict[str, Any]] | None = None  # a valid body, given today


def _patient_example(today: date) -> dict[str, Any]:
    return {"name": "Ana Doe", "phone": "+13105550142", "email": "ana@example.test"}


def _waitlist_example(today: date) -> dict[str, Any]:
    return {
        "patient_id": 1,
        "service_id": 1,
        "location_id": 1,
        "earliest": today.isoformat(),
        "latest": (today + timedelta(days=30)).isoformat(),
        "windows": [{"weekday": 0, "start": "09:00", "end": "12:00"}],
        "preferred_time": "10:00",
        "short_notice_ok": True,
    }


def _slot_example(today: date) -> dict[str, Any]:
    start = (today + timedelta(days=1)).isoformat() + "T15:00:00Z"
    return {"practitioner_id": 1, "service_id": 1, "start_at": start}


def _appointment_example(today: date) -> dict[str, Any]:
    return {"slot_id": 1, "patient_id": 1}


def _reschedule_example(today: date) -> dict[str, Any]:
    return {"slot_id": 2}


def _patient_patch_example(today: date) -> dict[str, Any]:
    return {"timezone": "America/Los_Angeles"}


def _cancel_example(today: date) -> dict[str, Any]:
    return {"reason": "The patient called: a family emergency.", "waive_fee": False}


def _release_example(today: date) -> dict[str, Any]:
    return {"reason": "The practitioner is unwell today."}


def _practitioner_example(today: date) -> dict[str, Any]:
    return {"name": "Dr. Rivera", "location_id": 1, "service_ids": [1], "active": True}


def _practitioner_patch_example(today: date) -> dict[str, Any]:
    return {"active": False}


#: (method, path relative to /api/v1) → operation. Add new endpoints here.
OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/openapi.json"): Op(
        "This OpenAPI document", public=True, raw_response={"type": "object"}
    ),
    ("GET", "/locations"): Op("List locations", s.LocationOut, many=True),
    ("GET", "/practitioners"): Op(
        "List practitioners",
        s.PractitionerOut,
        many=True,
        errors=(422,),
        query=(("location_id", "only those at this location"),),
    ),
    ("POST", "/practitioners"): Op(
        "Add a practitioner (sync from the practice's system)",
        s.PractitionerOut,
        statuses=(201,),
        body=s.PractitionerIn,
        example=_practitioner_example,
        codes=("unknown_location", "unknown_service"),
    ),
    ("PATCH", "/practitioners/{practitioner_id}"): Op(
        "Change a practitioner: name, location, services, active (fields given only)",
        s.PractitionerOut,
        body=s.PractitionerPatch,
        example=_practitioner_patch_example,
        errors=(404,),
        codes=("unknown_location", "unknown_service"),
    ),
    ("GET", "/services"): Op("List services", s.ServiceOut, many=True),
    ("POST", "/patients"): Op(
        "Register a patient (phone validated, time zone resolved)",
        s.PatientOut,
        statuses=(201,),
        body=s.PatientIn,
        example=_patient_example,
        codes=("invalid_phone", "invalid_email", "invalid_timezone", "unknown_location"),
    ),
    ("PATCH", "/patients/{patient_id}"): Op(
        "Set the patient's time zone (explicit), or with null detect it again; reminders of"
        " upcoming visits are replanned",
        s.PatientOut,
        body=s.PatientPatch,
        example=_patient_patch_example,
        errors=(404,),
        codes=("invalid_timezone",),
    ),
    ("POST", "/waitlist"): Op(
        "Join the waitlist (201), or update the patient's active entry (200)",
        s.WaitlistEntryOut,
        statuses=(201, 200),
        body=s.WaitlistIn,
        example=_waitlist_example,
        errors=(409,),
        codes=(
            "unknown_patient",
            "unknown_service",
            "unknown_location",
            "unknown_practitioner",
            "location_required",
            "inactive_service",
            "invalid_practitioner",
            "invalid_date_range",
            "invalid_windows",
        ),
    ),
    ("POST", "/slots"): Op(
        "Open a slot; filling from the waitlist starts",
        s.SlotOut,
        statuses=(201,),
        body=s.SlotIn,
        example=_slot_example,
        errors=(409,),
        codes=(
            "unknown_practitioner",
            "unknown_service",
            "inactive_practitioner",
            "inactive_service",
            "slot_in_past",
            "slot_too_far_ahead",
            "invalid_slot_range",
            "nonexistent_local_time",
        ),
    ),
    ("GET", "/slots"): Op(
        "List slots starting in [from, to), by status, practitioner and location (paged)",
        s.SlotPage,
        errors=(422,),
        query_model=s.SlotQuery,
        codes=("invalid_range",),
    ),
    ("GET", "/slots/{slot_id}"): Op("Get a slot", s.SlotOut, errors=(404,)),
    ("GET", "/analytics"): Op(
        "The dashboard's figures for local days [from, to] (each location's own zone):"
        " released slots and the share filled (by source), median and p90 minutes to fill,"
        " offers per filled slot, revenue recovered, acceptance by channel, wave and offer"
        " mode, delivery success by channel, fallback depth, messages per patient per week,"
        " weekly no-show and late-cancellation rates, fees charged/waived/collected."
        " Rates come as {count, of, rate} (rate null when `of` is 0)",
        errors=(422,),
        query_model=s.AnalyticsQuery,
        codes=("invalid_range", "unknown_location"),
        raw_response={"type": "object"},
    ),
    ("POST", "/slots/{slot_id}/release"): Op(
        "Cancel the slot's appointment if any (the patient is told, with `reason` if"
        " given); the slot reopens and filling starts (409 `slot_in_use` once the patient"
        " has checked in)",
        s.SlotOut,
        body=s.ReleaseIn,
        body_optional=True,
        example=_release_example,
        errors=(404, 409, 422),
    ),
    ("GET", "/slots/{slot_id}/offers"): Op(
        "Offers made for a slot, by wave", s.OfferOut, many=True, errors=(404,)
    ),
    ("POST", "/appointments"): Op(
        "Book a slot (the same atomic path as patients); 409 `slot_filled` carries"
        " `alternatives` (see SlotFilledBody); 409 `patient_busy` names the clashing"
        " `appointment_id`",
        s.AppointmentOut,
        statuses=(201,),
        body=s.AppointmentIn,
        example=_appointment_example,
        errors=(409,),
        codes=("unknown_slot", "unknown_patient"),
    ),
    ("GET", "/appointments"): Op(
        "List appointments by patient, slot, status and slot start in [from, to) (paged)",
        s.AppointmentPage,
        errors=(422,),
        query_model=s.AppointmentQuery,
        codes=("invalid_range",),
    ),
    ("GET", "/appointments/{appointment_id}"): Op(
        "Get an appointment", s.AppointmentOut, errors=(404,)
    ),
    ("POST", "/appointments/{appointment_id}/reschedule"): Op(
        "Move the appointment to another open slot of the same service, atomically (the old"
        " slot reopens and fills); 409 `slot_filled` carries `alternatives`, 409"
        " `not_reschedulable`, `patient_busy` or `reschedule_fee_required` (with `fee_cents`)",
        s.AppointmentOut,
        body=s.RescheduleIn,
        example=_reschedule_example,
        errors=(404, 409),
        codes=("unknown_slot", "same_slot", "service_mismatch"),
    ),
    ("POST", "/appointments/{appointment_id}/check-in"): Op(
        "Mark the patient arrived (409 `not_checkable` once cancelled or a no-show)",
        s.AppointmentOut,
        errors=(404, 409),
    ),
    ("POST", "/appointments/{appointment_id}/complete"): Op(
        "Mark a checked-in visit done (409 `not_checkable` before check-in)",
        s.AppointmentOut,
        errors=(404, 409),
    ),
    ("POST", "/appointments/{appointment_id}/cancel"): Op(
        "Cancel for the patient: the category's policy sets `cancellation_fee_cents`"
        " (grace, notice, late or full price; `waive_fee` waives it, audited); the slot"
        " reopens and fills. Cancelling a cancelled appointment returns it unchanged;"
        " 409 `not_cancellable` once checked in, completed or a no-show",
        s.AppointmentOut,
        body=s.CancelIn,
        example=_cancel_example,
        errors=(404, 409),
    ),
}

_MODELS: tuple[type[BaseModel], ...] = (
    s.LocationOut,
    s.PractitionerOut,
    s.ServiceOut,
    s.PatientOut,
    s.WaitlistEntryOut,
    s.SlotOut,
    s.AppointmentOut,
    s.OfferOut,
    s.SlotPage,
    s.AppointmentPage,
    s.ErrorBody,
    s.SlotFilledBody,
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(method: str, path: str, op: Op, today: date) -> dict[str, Any]:
    op_id = method.lower() + "_" + re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")
    result: dict[str, Any] = {"operationId": op_id, "summary": op.summary}
    params = [
        {"name": name, "in": "path", "required": True, "schema": dict(ID_SCHEMA)}
        for name in re.findall(r"{(\w+)}", path)
    ]
    params += [
        {"name": name, "in": "query", "description": text, "schema": dict(ID_SCHEMA)}
        for name, text in op.query
    ]
    if op.query_model is not None:
        params += _query_parameters(op.query_model)
    if params:
        result["parameters"] = params
    if op.body is not None:
        media: dict[str, Any] = {"schema": _ref(op.body)}
        if op.example is not None:
            media["example"] = op.example(today)
        result["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": media},
        }
    if op.raw_response is not None:
        schema = op.raw_response
    elif op.response is not None:
        schema = {"type": "array", "items": _ref(op.response)} if op.many else _ref(op.response)
    else:
        schema = {"type": "object"}
    responses = {str(code): _json(schema, "OK") for code in op.statuses}
    errors = set(op.errors)
    if op.body is not None:
        errors |= {400, 422}
    if op.public:
        result["security"] = []
    else:
        errors.add(401)
    for code in sorted(errors):
        responses[str(code)] = _json(_ref(s.ErrorBody), _ERROR_TEXT[code])
    if 422 in errors:
        responses["422"] = _unprocessable(op.codes)
    result["responses"] = responses
    return result


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One optional query parameter per field of ``model`` (by its alias)."""
    schema = model.model_json_schema(by_alias=True, ref_template=_REF)
    defs = schema.get("$defs", {})
    params = []
    for name, prop in schema["properties"].items():
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        param_schema = {k: v for k, v in options[0].items() if k not in ("title", "default")}
        if "$ref" in param_schema:  # an enum: inline it (a parameter is a plain string)
            param_schema = dict(defs[param_schema["$ref"].rsplit("/", 1)[1]])
            param_schema.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "schema": param_schema}
        description = prop.get("description") or param_schema.pop("description", None)
        if description:
            param["description"] = description
        params.append(param)
    return params


def _unprocessable(codes: tuple[str, ...]) -> dict[str, Any]:
    """The 422 response: ``validation_error`` or one of the operation's domain codes."""
    lines = [f"- `{code}`: {_DOMAIN_CODES[code]}" for code in codes]
    schema = {
        "allOf": [_ref(s.ErrorBody)],
        "properties": {"error": {"properties": {"code": {"enum": ["validation_error", *codes]}}}},
    }
    return _json(schema, "\n".join([_ERROR_TEXT[422], *lines]))


@cache
def _component_schemas() -> dict[str, Any]:
    bodies = {op.body for op in OPERATIONS.values() if op.body is not None}
    inputs = sorted(bodies, key=lambda m: m.__name__)
    pairs = [(m, "validation") for m in inputs] + [(m, "serialization") for m in _MODELS]
    _, top = models_json_schema(pairs, ref_template=_REF)  # type: ignore[arg-type]
    return dict(sorted(top.get("$defs", {}).items()))


def build_document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document (built once a day: its examples name dates)."""
    return _document_for(now_utc().date())


@lru_cache(maxsize=2)
def _document_for(today: date) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in OPERATIONS.items():
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, op, today)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Waitlist portal API",
            "version": "1",
            "description": (
                "For the practice's scheduling system. Times are ISO 8601 with offset "
                "(responses in UTC), money in integer cents. Errors are "
                '`{"error": {"code", "message", ...}}` with a stable code.'
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": _component_schemas(),
        },
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(build_document())
