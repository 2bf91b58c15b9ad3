"""Request bodies (validated with pydantic) and the documented response shapes.

Bodies refuse unknown fields; the scalar types (``fields.py``) accept exactly what the
OpenAPI document describes: ids 1..2^31-1, printable text of bounded length, whole-minute
times with an offset (converted to UTC). ``parse_body`` turns any failure into a
``DomainError``: 400 ``invalid_json`` or 422 ``validation_error`` with ``fields``.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    FeeTier,
    OfferStatus,
    ReminderStatus,
    SlotStatus,
    TimezoneSource,
    WaitlistStatus,
)
from portal.services.errors import DomainError, ValidationFailed
from portal.services.waitlist import MAX_WINDOWS
from portal.web.api.fields import (
    INSTANT_DESCRIPTION,
    ClockText,
    ClockTime,
    Day,
    Id,
    Instant,
    Weekday,
    text,
)
from portal.web.ids import MAX_ID

M = TypeVar("M", bound=BaseModel)

Name = text(120)
PhoneText = text(
    40, "a dialable number, e.g. +13105550142 or (310) 555-0142 (else 422 `invalid_phone`)"
)
EmailText = text(254)
ZoneName = text(64, "IANA zone, e.g. America/New_York")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientIn(_Body):
    name: Name
    phone: PhoneText
    email: EmailText | None = None
    timezone: ZoneName | None = Field(None, description="IANA zone; else from the phone")
    home_location_id: Id | None = None


class WindowIn(_Body):
    """A weekly window in the patient's zone; `start` must be before `end`."""

    weekday: Weekday
    start: ClockText
    end: ClockText


class WaitlistIn(_Body):
    patient_id: Id
    service_id: Id
    location_id: Id | None = Field(None, description="default: the patient's home location")
    preferred_practitioner_id: Id | None = None
    earliest: Day | None = Field(
        None, description="not after latest (else 422 `invalid_date_range`)"
    )
    latest: Day | None = None
    windows: Annotated[list[WindowIn], Field(max_length=MAX_WINDOWS)] | None = Field(
        None,
        description="weekly availability in the patient's zone, each window starting before"
        " it ends (else 422 `invalid_windows`); none = any time",
    )
    preferred_time: ClockTime | None = None
    short_notice_ok: StrictBool = False


class SlotIn(_Body):
    practitioner_id: Id
    service_id: Id
    start_at: Instant = Field(
        description=INSTANT_DESCRIPTION + "; in the future and at most two years ahead"
        " (else 422 `slot_in_past` or `slot_too_far_ahead`)"
    )
    end_at: Instant | None = Field(
        None,
        description=INSTANT_DESCRIPTION + "; after start_at, at most 12 hours later"
        " (else 422 `invalid_slot_range`); default: start + the service's duration",
    )


class PractitionerIn(_Body):
    name: Name
    location_id: Id
    service_ids: Annotated[list[Id], Field(max_length=200)] | None = Field(
        None, description="the services this practitioner performs (default: none listed)"
    )
    active: StrictBool = True


class PractitionerPatch(_Body):
    """Only the fields given change; null or absent leaves a field as it is."""

    name: Name | None = None
    location_id: Id | None = None
    service_ids: Annotated[list[Id], Field(max_length=200)] | None = None
    active: StrictBool | None = None


#: An id in a query string (digits; the same bounds as every id).
QueryId = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    page: Annotated[int, Field(strict=False, ge=1, le=10_000)] = Field(
        1, description="page number, from 1"
    )
    per_page: Annotated[int, Field(strict=False, ge=1, le=200)] = Field(
        50, description="items per page, at most 200"
    )


class SlotQuery(_Query):
    from_: Instant | None = Field(
        None, alias="from", description="slots starting at or after this instant"
    )
    to: Instant | None = Field(None, description="slots starting before this instant")
    status: SlotStatus | None = None
    practitioner_id: QueryId | None = None
    location_id: QueryId | None = None


class AppointmentQuery(_Query):
    patient_id: QueryId | None = None
    slot_id: QueryId | None = None
    status: AppointmentStatus | None = None
    from_: Instant | None = Field(
        None, alias="from", description="appointments whose slot starts at or after this"
    )
    to: Instant | None = Field(None, description="appointments whose slot starts before this")


class AnalyticsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: Day | None = Field(
        None,
        alias="from",
        description="first local day (each location's own zone); default: 27 days before `to`",
    )
    to: Day | None = Field(None, description="last local day, inclusive; default: today")
    location_id: QueryId | None = Field(None, description="one location; default: all")


class AppointmentIn(_Body):
    slot_id: Id
    patient_id: Id


class RescheduleIn(_Body):
    slot_id: Id = Field(description="an open slot of the same service")
    accept_fee_cents: Annotated[int, Field(ge=0, le=10_000_000)] | None = Field(
        None,
        description="the late-change fee the caller accepts, when moving costs one"
        " (else 409 `reschedule_fee_required` with `fee_cents`)",
    )


class PatientPatch(_Body):
    timezone: ZoneName | None = Field(
        description="IANA zone chosen explicitly; null detects it again (from the phone,"
        " else the home location)"
    )


class CancelIn(_Body):
    #: Why the patient cancelled (kept with the appointment and in the audit log).
    reason: text(200)
    #: Waive the cancellation fee the policy would charge (audited).
    waive_fee: StrictBool = False


class ReleaseIn(_Body):
    #: Told to the patient whose booking is cancelled (optional).
    reason: text(200) | None = None


# Response shapes: documentation for the OpenAPI document (serializers.py builds them).


class LocationOut(BaseModel):
    id: int
    name: str
    timezone: str
    phone: str


class PractitionerOut(BaseModel):
    id: int
    name: str
    location_id: int
    active: bool
    service_ids: list[int]


class ServiceOut(BaseModel):
    id: int
    name: str
    category: str
    duration_minutes: int
    price_cents: int
    active: bool


class PatientOut(BaseModel):
    id: int
    name: str
    phone_e164: str | None
    email: str | None
    timezone: str
    timezone_source: TimezoneSource


class WindowOut(BaseModel):
    weekday: int
    start: str
    end: str


class WaitlistEntryOut(BaseModel):
    id: int
    patient_id: int
    service_id: int
    location_id: int
    preferred_practitioner_id: int | None
    earliest: date | None
    latest: date | None
    windows: list[WindowOut]
    preferred_time: str | None
    short_notice_ok: bool
    priority: int
    status: WaitlistStatus
    created_at: datetime


class SlotOut(BaseModel):
    id: int
    location_id: int
    practitioner_id: int
    service_id: int
    start_at: datetime
    end_at: datetime
    status: SlotStatus
    opened_at: datetime | None
    #: The slot's active appointment, else null.
    appointment_id: int | None


class ReminderOut(BaseModel):
    due_at: datetime
    #: `scheduled` (still to go) or `sent`; cancelled and skipped ones are left out.
    status: ReminderStatus


class AppointmentOut(BaseModel):
    id: int
    slot_id: int
    patient_id: int
    status: AppointmentStatus
    source: AppointmentSource
    booked_at: datetime
    confirmed_at: datetime | None
    checked_in_at: datetime | None
    completed_at: datetime | None
    no_show_at: datetime | None
    cancelled_at: datetime | None
    #: What the patient owes for cancelling (0 when free or waived; null if not cancelled
    #: by or for the patient).
    cancellation_fee_cents: int | None
    #: The appointment's reminders, in the order they go.
    reminders: list[ReminderOut]
    #: Which cancellation rule applied: grace, notice, late or full.
    cancellation_tier: FeeTier | None
    #: A rebooking discount (percent) recorded on the appointment, if any.
    discount_percent: int | None


class SlotPage(BaseModel):
    items: list[SlotOut]
    page: int
    per_page: int
    total: int


class AppointmentPage(BaseModel):
    items: list[AppointmentOut]
    page: int
    per_page: int
    total: int


class OfferOut(BaseModel):
    id: int
    slot_id: int
    patient_id: int
    waitlist_entry_id: int
    status: OfferStatus
    wave: int
    window_expires_at: datetime
    responded_at: datetime | None


class FieldError(BaseModel):
    loc: list[str | int]
    message: str
    type: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    fields: list[FieldError] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    fields = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        message = "The body must be a JSON object" if err["type"] == "model_type" else err["msg"]
        fields.append({"loc": list(err["loc"]), "message": message, "type": err["type"]})
    return fields


def parse_query(model: type[M], args: dict[str, str]) -> M:
    """Validate query-string parameters against ``model`` (422 ``validation_error``)."""
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        fields = _field_errors(exc)
        for error in fields:
            error["loc"] = ["query", *error["loc"]]
        raise ValidationFailed(fields) from None


def parse_body(model: type[M], raw: bytes, mimetype: str) -> M:
    """Decode a JSON request body and validate it against ``model``."""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise DomainError(
            "Send a JSON body with Content-Type: application/json.",
            code="invalid_json",
            status=400,
        )
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise DomainError("The body is not valid JSON.", code="invalid_json", status=400) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(_field_errors(exc)) from None


class AlternativeOut(BaseModel):
    slot: SlotOut
    score: int
    reasons: list[str]


class SlotFilledError(BaseModel):
    code: str = "slot_filled"
    message: str
    alternatives: list[AlternativeOut]


class SlotFilledBody(BaseModel):
    error: SlotFilledError
