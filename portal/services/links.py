"""Signed, expiring, single-purpose patient links.

A token names one offer (or appointment) *and* its patient, carries its own expiry,
and is signed with a salt per purpose, so an offer token can never open an
appointment page, and editing an id breaks the signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

from portal.db import now_utc


class LinkPurpose(StrEnum):
    OFFER = "offer"
    APPOINTMENT = "appointment"
    REBOOK = "rebook"  # a no-show's discounted rebooking (names the missed appointment)


class LinkError(Exception):
    """The token is not valid; ``expired`` tells an old link from a forged one."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


@dataclass(frozen=True)
class LinkClaims:
    entity_id: int
    patient_id: int
    expires_at: datetime


def _serializer(purpose: LinkPurpose) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"patient-link:{purpose}")


def make_token(purpose: LinkPurpose, entity_id: int, patient_id: int, expires_at: datetime) -> str:
    """Sign a token for ``entity_id`` belonging to ``patient_id``, valid until ``expires_at``."""
    return _serializer(purpose).dumps([entity_id, patient_id, int(expires_at.timestamp())])


def read_token(purpose: LinkPurpose, token: str, now: datetime | None = None) -> LinkClaims:
    """Verify a token and return its claims, or raise ``LinkError``."""
    try:
        entity_id, patient_id, expires = _serializer(purpose).loads(token)
    except (BadSignature, ValueError, TypeError) as exc:
        raise LinkError() from exc
    if not all(isinstance(v, int) for v in (entity_id, patient_id, expires)):
        raise LinkError()
    expires_at = datetime.fromtimestamp(expires, tz=now_utc().tzinfo)
    if (now or now_utc()) > expires_at:
        raise LinkError(expired=True)
    return LinkClaims(entity_id, patient_id, expires_at)


def link_lifetime_end(slot_start: datetime) -> datetime:
    """Patient links stay readable a little past the slot (to see what happened)."""
    return slot_start + timedelta(days=current_app.config["PATIENT_LINK_GRACE_DAYS"])


#: Appointment links outlive the visit: patients come back for receipts and calendars.
APPOINTMENT_LINK_DAYS = 30


def offer_token(offer_id: int, patient_id: int, slot_start: datetime) -> str:
    """Return the signed token of an offer page for its patient."""
    return make_token(LinkPurpose.OFFER, offer_id, patient_id, link_lifetime_end(slot_start))


def appointment_token(appointment_id: int, patient_id: int, slot_start: datetime) -> str:
    """Return the signed token of an appointment page for its patient."""
    expires = slot_start + timedelta(days=APPOINTMENT_LINK_DAYS)
    return make_token(LinkPurpose.APPOINTMENT, appointment_id, patient_id, expires)


#: A call's TwiML link stays usable this long (Twilio fetches it within seconds).
TWIML_TOKEN_MAX_AGE = 24 * 3600


def _twiml_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="twiml-call")


def twiml_token(attempt_id: int) -> str:
    """Sign the token of the TwiML URL for the call made by ``attempt_id``."""
    return _twiml_serializer().dumps(attempt_id)


def read_twiml_token(token: str) -> int | None:
    """Return the attempt id a call token names, or None if it is not valid."""
    try:
        attempt_id = _twiml_serializer().loads(token, max_age=TWIML_TOKEN_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        return None
    return attempt_id if isinstance(attempt_id, int) else None


def _absolute(path: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}{path}"


def offer_url(offer_id: int, patient_id: int, slot_start: datetime) -> str:
    """Return the absolute URL of an offer page (for messages)."""
    return _absolute(f"/o/{offer_token(offer_id, patient_id, slot_start)}")


#: A first no-show's discounted rebooking link stays usable this long.
REBOOK_LINK_DAYS = 30


def rebook_token(appointment_id: int, patient_id: int, missed_at: datetime) -> str:
    """Return the signed token of the discounted rebooking page for a missed appointment."""
    expires = missed_at + timedelta(days=REBOOK_LINK_DAYS)
    return make_token(LinkPurpose.REBOOK, appointment_id, patient_id, expires)


def rebook_url(appointment_id: int, patient_id: int, missed_at: datetime) -> str:
    """Return the absolute URL of the discounted rebooking page (for messages)."""
    return _absolute(f"/r/{rebook_token(appointment_id, patient_id, missed_at)}")


def appointment_url(appointment_id: int, patient_id: int, slot_start: datetime) -> str:
    """Return the absolute URL of an appointment page (for messages)."""
    return _absolute(f"/a/{appointment_token(appointment_id, patient_id, slot_start)}")
