"""Twilio webhooks: delivery receipts, inbound texts, and the TwiML for calls.

Every request must carry a valid ``X-Twilio-Signature``: an HMAC (with the account's
auth token) over the public URL Twilio called — rebuilt from ``PUBLIC_BASE_URL`` plus
the path and query, so it also validates behind a proxy — and the POST parameters.
Anything else gets 403. Signatures do not stop replays; the handlers are idempotent
(each receipt and inbound text is stored once, keyed by provider id and status).
CSRF does not apply (Twilio cannot send a token); the signature replaces it.

A signature vouches for the sender, not the values: a NUL byte anywhere (PostgreSQL
refuses it in text) or a provider id or status of the wrong shape gets 400; the
``attempt`` hint (our own query parameter) and ``ErrorCode`` are used only when they
are well-formed, and ignored otherwise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from portal.db import db
from portal.extensions import csrf
from portal.models.enums import Channel
from portal.services.links import read_twiml_token
from portal.services.notify.backends import public_url
from portal.services.notify.receipts import Receipt, apply_receipt
from portal.services.replies.inbound import InboundSms, handle_inbound
from portal.services.replies.voice import call_twiml, gather_twiml
from portal.web.ids import parse_id

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__)
csrf.exempt(bp)

P = ParamSpec("P")
R = TypeVar("R")

#: Twilio's SIDs are two letters and 32 hex digits; allow any short alphanumeric id.
_PROVIDER_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_STATUS = re.compile(r"[a-z-]{1,32}")
_ERROR_CODE = re.compile(r"[0-9]{1,9}")


def signed_url() -> str:
    """Return the URL Twilio signed: the public base, the path, and the query string."""
    query = request.query_string.decode("utf-8", "replace")
    return public_url(request.path) + (f"?{query}" if query else "")


def signature_valid() -> bool:
    """Whether the request's X-Twilio-Signature matches the public URL and form."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    return RequestValidator(token).validate(signed_url(), request.form, signature)


def twilio_signed(view: Callable[P, R]) -> Callable[P, R]:
    """Refuse (403) any request Twilio did not sign."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if not signature_valid():
            log.warning("rejected unsigned or badly signed request to %s", request.path)
            abort(403)
        if _carries_nul():
            log.warning("rejected a signed request to %s carrying a NUL byte", request.path)
            abort(400)
        return view(*args, **kwargs)

    return wrapped


def _carries_nul() -> bool:
    return any("\x00" in key or "\x00" in value for key, value in request.values.items(multi=True))


def _xml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def _error_code() -> str | None:
    code = request.form.get("ErrorCode", "")
    return code if _ERROR_CODE.fullmatch(code) else None


def _status_callback(sid_field: str, status_field: str, channel: Channel) -> Response:
    sid = request.form.get(sid_field, "")
    status = request.form.get(status_field, "")
    if not _PROVIDER_ID.fullmatch(sid) or not _STATUS.fullmatch(status):
        abort(400)
    result = apply_receipt(
        Receipt(
            provider="twilio",
            provider_id=sid,
            status=status,
            error_code=_error_code(),
            idempotency_key=f"twilio:{sid}:{status}",
            attempt_id=parse_id(request.args.get("attempt")),
            channel=channel,
        )
    )
    db.session.commit()
    log.info("twilio %s receipt %s %s: %s", channel.value, sid, status, result)
    return Response(status=204)


@bp.post("/webhooks/twilio/sms-status")
@twilio_signed
def sms_status() -> Response:
    """A message status callback (MessageSid, MessageStatus, ErrorCode)."""
    return _status_callback("MessageSid", "MessageStatus", Channel.SMS)


@bp.post("/webhooks/twilio/voice-status")
@twilio_signed
def voice_status() -> Response:
    """A call status callback (CallSid, CallStatus)."""
    return _status_callback("CallSid", "CallStatus", Channel.VOICE)


@bp.post("/webhooks/twilio/sms-inbound")
@twilio_signed
def sms_inbound() -> Response:
    """A text from a patient: answer an offer, or opt out / in, or ask for help."""
    sms = InboundSms(
        message_sid=request.form.get("MessageSid", "") or request.form.get("SmsSid", ""),
        from_number=request.form.get("From", ""),
        body=request.form.get("Body", ""),
        opt_out_type=request.form.get("OptOutType") or None,
    )
    if not _PROVIDER_ID.fullmatch(sms.message_sid):
        abort(400)
    reply = handle_inbound(sms)
    db.session.commit()
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return _xml(str(response))


@bp.post("/twiml/offer/<token>")
@twilio_signed
def offer_call(token: str) -> Response:
    """What an answered call says (an offer asks for 1 or 2)."""
    attempt_id = read_twiml_token(token)
    gather_url = public_url(f"/twiml/offer/{token}/gather")
    return _xml(call_twiml(attempt_id, gather_url))


@bp.post("/twiml/offer/<token>/gather")
@twilio_signed
def offer_gather(token: str) -> Response:
    """The key the patient pressed: 1 books through the atomic accept, 2 declines."""
    attempt_id = read_twiml_token(token)
    twiml = gather_twiml(
        attempt_id, request.form.get("Digits", ""), public_url(f"/twiml/offer/{token}")
    )
    db.session.commit()
    return _xml(twiml)
