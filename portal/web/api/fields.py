"""The API's scalar input types: what the server accepts is exactly what the document says.

Each type validates with the same regular expression it publishes as its JSON Schema
``pattern`` (written with explicit ASCII classes, no ``\\d``/``\\s``, so ECMA, Python
and Rust engines agree), so a fuzzer generating from the OpenAPI document finds no
value the document allows and the server refuses, nor the reverse.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from portal.web.ids import MAX_ID

#: One schema for every id, in bodies, query strings and paths (PostgreSQL ``integer``).
ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}

HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_DATE = r"(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
#: Dates from 2000-01-01 to 2199-12-31 (the waitlist's bounds).
DAY_PATTERN = rf"^2[01][0-9]{{2}}-{_DATE}$"
#: Whole minutes of the years 2000-2099, with a UTC offset (``Z`` or ``±HH:MM``).
INSTANT_PATTERN = (
    rf"^20[0-9]{{2}}-{_DATE}T([01][0-9]|2[0-3]):[0-5][0-9]:00"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)

# Control characters are refused; text is stripped of what str.strip() removes, so it
# must keep at least one character that is neither control nor such blank.
_CONTROL = r"\x00-\x1f\x7f"
_BLANK = r" \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = rf"^[^{_CONTROL}]*[^{_CONTROL}{_BLANK}][^{_CONTROL}]*$"


def _whole_number(value: Any) -> Any:
    """Take 3.0 as 3: JSON Schema counts integral numbers as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _matching(pattern: re.Pattern[str], value: Any, error: str, message: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PydanticCustomError(error, message)
    return value


def _text_validator(max_length: int) -> Any:
    pattern = re.compile(TEXT_PATTERN)
    message = f"Give 1 to {max_length} characters, not all blank, with no control characters"

    def validate(value: Any) -> str:
        if isinstance(value, str) and len(value) > max_length:
            raise PydanticCustomError("string_too_long", message)
        return _matching(pattern, value, "invalid_text", message).strip()

    return validate


def text(max_length: int, description: str | None = None) -> Any:
    """Return a string type: 1 to ``max_length`` characters, printable, stripped."""
    schema: dict[str, Any] = {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": TEXT_PATTERN,
    }
    if description:
        schema["description"] = description
    return Annotated[str, PlainValidator(_text_validator(max_length)), WithJsonSchema(schema)]


INSTANT_DESCRIPTION = (
    "Whole minutes (seconds :00, no fraction) with a UTC offset (Z or ±HH:MM), years 2000-2099"
)
_INSTANT_RE = re.compile(INSTANT_PATTERN)
_INSTANT_MESSAGE = (
    "Use whole minutes with a UTC offset, e.g. 2031-03-02T15:30:00-05:00 (years 2000-2099)"
)


def _instant(value: Any) -> datetime:
    """An aware instant, keeping the offset it was written with (services check it)."""
    text_value = _matching(_INSTANT_RE, value, "invalid_datetime", _INSTANT_MESSAGE)
    try:
        return datetime.fromisoformat(text_value.replace("Z", "+00:00"))
    except ValueError:  # e.g. 30 February
        raise PydanticCustomError("invalid_datetime", _INSTANT_MESSAGE) from None


_DAY_RE = re.compile(DAY_PATTERN)
_DAY_MESSAGE = "Use a date as YYYY-MM-DD between 2000-01-01 and 2199-12-31"


def _day(value: Any) -> date:
    text_value = _matching(_DAY_RE, value, "invalid_date", _DAY_MESSAGE)
    try:
        return date.fromisoformat(text_value)
    except ValueError:
        raise PydanticCustomError("invalid_date", _DAY_MESSAGE) from None


_HHMM_RE = re.compile(HHMM_PATTERN)
_HHMM_MESSAGE = "Use a time of day as HH:MM (00:00-23:59)"


def _clock_text(value: Any) -> str:
    return _matching(_HHMM_RE, value, "invalid_time", _HHMM_MESSAGE)


# The constraints come first so they land in the JSON Schema as minimum/maximum.
Id = Annotated[int, Field(strict=True, ge=1, le=MAX_ID), BeforeValidator(_whole_number)]
Weekday = Annotated[
    int,
    Field(strict=True, ge=0, le=6, description="0 = Monday … 6 = Sunday"),
    BeforeValidator(_whole_number),
]
Instant = Annotated[
    datetime,
    PlainValidator(_instant),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": INSTANT_PATTERN,
            "description": INSTANT_DESCRIPTION,
        }
    ),
]
Day = Annotated[
    date,
    PlainValidator(_day),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": DAY_PATTERN,
            "description": "YYYY-MM-DD, 2000-01-01 to 2199-12-31",
        }
    ),
]
ClockText = Annotated[
    str,
    PlainValidator(_clock_text),
    WithJsonSchema({"type": "string", "pattern": HHMM_PATTERN, "description": "HH:MM"}),
]
ClockTime = Annotated[
    time,
    PlainValidator(lambda value: time.fromisoformat(_clock_text(value))),
    WithJsonSchema({"type": "string", "pattern": HHMM_PATTERN, "description": "HH:MM"}),
]
