"""Phone numbers: parse and validate to E.164, guess a zone, mask for display and logs."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import available_timezones

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from phonenumbers import geocoder as phone_geocoder
from phonenumbers import timezone as phone_timezone

#: Longest input accepted as typed (the ``patient.phone_raw`` column).
MAX_RAW_LENGTH = 40

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
    NumberParseException.NOT_A_NUMBER: "not_a_number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    NumberParseException.TOO_SHORT_NSN: "too_short",
    NumberParseException.TOO_LONG: "too_long",
}

_REASON_TEXT = {
    "empty": "No phone number was given.",
    "too_long": "That phone number is too long.",
    "too_short": "That phone number is too short.",
    "not_a_number": "That does not look like a phone number.",
    "invalid_country_code": "That phone number has an unknown country code.",
    "invalid_number": "That phone number does not exist (check the area code and digits).",
}


@dataclass(frozen=True)
class ParsedPhone:
    """The outcome of parsing: ``e164`` is set only when the number is valid."""

    e164: str | None
    valid: bool
    reason: str | None = None

    @property
    def message(self) -> str:
        """Return a sentence explaining why the number was refused ("" when valid)."""
        return _REASON_TEXT.get(self.reason or "", "") if not self.valid else ""


def parse_phone(raw: str, region: str = "US") -> ParsedPhone:
    """Parse ``raw`` as typed (national numbers read in ``region``) and validate it."""
    text = (raw or "").strip()
    if not text:
        return ParsedPhone(None, False, "empty")
    if len(text) > MAX_RAW_LENGTH:
        return ParsedPhone(None, False, "too_long")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return ParsedPhone(None, False, _PARSE_REASONS.get(exc.error_type, "not_a_number"))
    if not phonenumbers.is_valid_number(number):
        return ParsedPhone(None, False, "invalid_number")
    return ParsedPhone(phonenumbers.format_number(number, PhoneNumberFormat.E164), True)


@lru_cache(maxsize=1)
@functools.cache
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone_for_phone(e164: str | None) -> str | None:
    """Return the number's IANA zone when the numbering plan names exactly one, else None."""
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    zones = [z for z in phone_timezone.time_zones_for_number(number) if z and z != "Etc/Unknown"]
    if len(zones) != 1 or zones[0] not in known_zones():
        return None
    return zones[0]


#: US states (and DC, PR) by the names the area-code geocoder uses.
US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "Washington State": "WA", "Washington D.C.": "DC", "West Virginia": "WV",
    "Wisconsin": "WI", "Wyoming": "WY", "Puerto Rico": "PR",
}  # fmt: skip
_STATE_CODES = frozenset(US_STATES.values())


@lru_cache(maxsize=4096)
def us_state_for_phone(e164: str | None) -> str | None:
    """Return the US state a number's area code belongs to ("FL"), else None.

    State texting laws presume the recipient lives where the area code is, so the
    stricter quiet hours some states set follow the number, not the clinic.
    """
    if not e164 or not e164.startswith("+1"):
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    if phonenumbers.region_code_for_number(number) != "US":
        return None
    place = phone_geocoder.description_for_number(number, "en")  # "Florida", "Miami, FL"
    if place in US_STATES:
        return US_STATES[place]
    suffix = place.rpartition(", ")[2]
    return suffix if suffix in _STATE_CODES else None


def mask_phone(e164: str | None) -> str:
    """Return the number with only its country code and last four digits, e.g. +1•••••0123."""
    if not e164:
        return ""
    digits = "".join(ch for ch in e164 if ch.isdigit())
    try:
        country = str(phonenumbers.parse(e164, None).country_code)
    except NumberParseException:
        return "•••••" + digits[-2:]
    if len(digits) <= len(country) + 4:
        return f"+{country}•••••"
    return f"+{country}•••••{digits[-4:]}"


@functools.lru_cache(maxsize=4096)
def display_phone(e164: str | None) -> str:
    """Return a number in its national format ("(212) 555-0100"), or as stored.

    Cached: a pure function of the string, and every patient page shows the clinic's."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, "US")
    except NumberParseException:
        return e164
    if not phonenumbers.is_valid_number(number):
        return e164
    region = phonenumbers.region_code_for_number(number)
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if region == "US"
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, fmt)
