"""The channel interface: every backend sends one rendered message for one attempt.

``send(attempt, to, message) -> provider_id``. Failures are classified so the chain
can act safely on them:

* ``TransientSendError`` — the provider certainly did not take the message (refused
  connection, rate limit, SMTP 4xx): the same channel may be tried again later.
* ``PermanentSendError`` — refused for good (invalid number, opted out, SMTP 5xx):
  go to the next channel.
* ``AmbiguousSendError`` — the provider may have taken it (read timeout, HTTP 5xx
  after the request went out): never send again on this channel; wait for a
  receipt, and escalate when none comes.

Reasons are short, fixed texts and codes: never an address or a provider's message
text (those can quote the number).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from flask import current_app

if TYPE_CHECKING:
    from portal.models import NotificationAttempt
    from portal.services.notify.messages import Message


#: Twilio error codes that mean the number cannot be texted or called at all.
INVALID_NUMBER_CODES = frozenset({21211, 21214, 21217, 21401, 21407, 21421, 21614, 13224})
#: The recipient replied STOP: Twilio refuses every later message to them.
OPTED_OUT_CODE = 21610


class SendError(Exception):
    """A send that did not (certainly) go through; ``reason`` is safe to store and log."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason[:200]
        self.code = code


class TransientSendError(SendError):
    """Not sent; trying the same channel again later is safe."""


class PermanentSendError(SendError):
    """Not sent, and this channel will not work for this message."""


class AmbiguousSendError(SendError):
    """Perhaps sent: the outcome is unknown, so the channel must not be retried."""


class Backend(Protocol):
    """A way to send on one or more channels."""

    #: Stored on the attempt as ``provider``; receipts are matched on it.
    name: str
    #: Sends inside the database transaction (the outbox): no crash window at all.
    transactional: bool
    #: Acceptance is all the provider will ever tell us (SMTP): count it as delivered.
    final_on_accept: bool

    def send(self, attempt: NotificationAttempt, to: str, message: Message) -> str:
        """Send ``message`` to ``to``; return the provider's id for it."""
        ...


#: Webhook paths Twilio is given (the blueprint in ``portal.web.twilio`` serves them).
SMS_STATUS_PATH = "/webhooks/twilio/sms-status"
VOICE_STATUS_PATH = "/webhooks/twilio/voice-status"
SMS_INBOUND_PATH = "/webhooks/twilio/sms-inbound"
TWIML_PATH = "/twiml/offer/"


def public_url(path: str) -> str:
    """Return the absolute public URL of ``path`` (the URL Twilio calls and signs)."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path
