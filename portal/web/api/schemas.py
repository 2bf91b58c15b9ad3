"""Request bodies (validated with pydantic) and the documented response shapes.

Bodies refuse unknown fields, ids must be JSON integers, datetimes must carry an
offset (they are converted to UTC). ``parse_body`` turns any failure into a
``DomainError``: 400 ``invalid_json`` or 422 ``validation_error`` with ``fields``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    OfferStatus,
    SlotStatus,
    TimezoneSource,
    WaitlistStatus,
)
from portal.services.errors import DomainError, ValidationFailed

M = TypeVar("M", bound=BaseModel)
HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"

Id = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]


def _printable(value: str) -> str:
    if any(ord(ch) < 32 for ch in value):
        raise PydanticCustomError("control_characters", "Control characters are not allowed")
    return value


def text(max_length: int) -> Any:
    """Return a stripped, non-empty string type of at most ``max_length`` characters."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length),
        AfterValidator(_printable),
    ]


def _instant(value: Any) -> datetime:
    message = "Use ISO 8601 with a UTC offset, e.g. 2026-03-02T15:30:00-05:00"
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("invalid_datetime", message) from None
    else:
        raise PydanticCustomError("invalid_datetime", message)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError("invalid_datetime", "The datetime needs a UTC offset: " + message)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("invalid_datetime", "That datetime is out of range") from None


def _day(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("invalid_date", "Use a date as YYYY-MM-DD")


def _clock(value: Any) -> time:
    if isinstance(value, str) and len(value) == 5:
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("invalid_time", "Use a time of day as HH:MM")


Name = text(120)
PhoneText = text(40)
EmailText = text(254)
ZoneName = text(64)

Instant = Annotated[
    datetime,
    PlainValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "with offset"}),
]
Day = Annotated[date, PlainValidator(_day), WithJsonSchema({"type": "string", "format": "date"})]
ClockTime = Annotated[
    time, PlainValidator(_clock), WithJsonSchema({"type": "string", "pattern": HHMM_PATTERN})
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientIn(_Body):
    name: Name
    phone: PhoneText
    email: EmailText | None = None
    timezone: ZoneName | None = Field(None, description="IANA zone; else from the phone")
    home_location_id: Id | None = None


class WindowIn(_Body):
    weekday: Annotated[int, Field(strict=True, ge=0, le=6, description="0 = Monday")]
    start: Annotated[str, Field(strict=True, pattern=HHMM_PATTERN)]
    end: Annotated[str, Field(strict=True, pattern=HHMM_PATTERN)]


class WaitlistIn(_Body):
    patient_id: Id
    service_id: Id
    location_id: Id | None = Field(None, description="default: the patient's home location")
    preferred_practitioner_id: Id | None = None
    earliest: Day | None = None
    latest: Day | None = None
    windows: Annotated[list[WindowIn], Field(max_length=50)] | None = Field(
        None, description="weekly availability in the patient's zone; none = any time"
    )
    preferred_time: ClockTime | None = None
    short_notice_ok: StrictBool = False


class SlotIn(_Body):
    practitioner_id: Id
    service_id: Id
    start_at: Instant
    end_at: Instant | None = Field(None, description="default: start + service duration")


class AppointmentIn(_Body):
    slot_id: Id
    patient_id: Id


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


class AppointmentOut(BaseModel):
    id: int
    slot_id: int
    patient_id: int
    status: AppointmentStatus
    source: AppointmentSource
    booked_at: datetime
    confirmed_at: datetime | None
    checked_in_at: datetime | None
    cancelled_at: datetime | None
    cancellation_fee_cents: int | None


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
