"""Twilio SMS and voice through the real ``twilio`` SDK.

``TWILIO_API_BASE`` points the client at another host (the tests' fake server). Every
request names its status callback with the attempt id in the query string, so a
receipt can be matched even when it overtakes the API response (Twilio does not
promise any order).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import requests
from flask import current_app
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from portal.services.links import twiml_token
from portal.services.notify.backends import (
    INVALID_NUMBER_CODES,
    OPTED_OUT_CODE,
    SMS_STATUS_PATH,
    TWIML_PATH,
    VOICE_STATUS_PATH,
    AmbiguousSendError,
    PermanentSendError,
    SendError,
    TransientSendError,
    public_url,
)

if TYPE_CHECKING:
    from portal.models import NotificationAttempt
    from portal.services.notify.messages import Message

# The SDK narrates every request at INFO; ids only would be fine, but it is noise.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

#: Seconds a call rings before Twilio reports ``no-answer``.
RING_SECONDS = 25


def twilio_client() -> Client:
    """Return this process's Twilio client (a forked work-horse builds its own)."""
    ext = current_app.extensions
    cached = ext.get("portal_twilio")
    if cached is not None and cached[0] == os.getpid():
        return cached[1]
    config = current_app.config
    http = TwilioHttpClient(timeout=float(config.get("TWILIO_TIMEOUT_SECONDS", 10)))
    client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], http_client=http)
    if config.get("TWILIO_API_BASE"):
        client.api.base_url = config["TWILIO_API_BASE"].rstrip("/")
    ext["portal_twilio"] = (os.getpid(), client)
    return client


def classify(exc: Exception) -> SendError:
    """Turn an SDK or HTTP failure into the chain's three kinds of send error."""
    if isinstance(exc, TwilioRestException):
        code = str(exc.code) if exc.code else None
        reason = f"Twilio error {exc.code or exc.status}"
        if exc.status == 429:
            return TransientSendError(f"{reason} (rate limited)", code)
        if exc.status >= 500:
            return AmbiguousSendError(f"{reason} (HTTP {exc.status}; may have been accepted)", code)
        if exc.code == OPTED_OUT_CODE:
            return PermanentSendError(f"{reason}: recipient opted out", code)
        if exc.code in INVALID_NUMBER_CODES:
            return PermanentSendError(f"{reason}: number cannot receive this", code)
        return PermanentSendError(f"{reason} (HTTP {exc.status})", code)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransientSendError("Twilio unreachable (connect timeout)")
    if isinstance(exc, requests.exceptions.ConnectionError) and _never_connected(exc):
        return TransientSendError("Twilio unreachable (connection refused)")
    if isinstance(exc, requests.exceptions.RequestException):
        return AmbiguousSendError(f"Twilio response lost ({type(exc).__name__})")
    return AmbiguousSendError(f"unexpected error ({type(exc).__name__})")


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectionRefusedError)


def _callback(path: str, attempt: NotificationAttempt) -> str:
    return f"{public_url(path)}?attempt={attempt.id}"


class TwilioSms:
    """Text messages through Twilio's Messages API."""

    name = "twilio"
    transactional = False
    final_on_accept = False

    def send(self, attempt: NotificationAttempt, to: str, message: Message) -> str:
        try:
            sent = twilio_client().messages.create(
                to=to,
                from_=current_app.config["TWILIO_FROM_NUMBER"],
                body=message.body,
                status_callback=_callback(SMS_STATUS_PATH, attempt),
            )
        except Exception as exc:
            raise classify(exc) from None
        return str(sent.sid)


class TwilioVoice:
    """Calls through Twilio's Calls API; Twilio fetches the TwiML when answered."""

    name = "twilio"
    transactional = False
    final_on_accept = False

    def send(self, attempt: NotificationAttempt, to: str, message: Message) -> str:
        try:
            call = twilio_client().calls.create(
                to=to,
                from_=current_app.config["TWILIO_FROM_NUMBER"],
                url=public_url(TWIML_PATH + twiml_token(attempt.id)),
                method="POST",
                status_callback=_callback(VOICE_STATUS_PATH, attempt),
                status_callback_method="POST",
                timeout=RING_SECONDS,
            )
        except Exception as exc:
            raise classify(exc) from None
        return str(call.sid)
