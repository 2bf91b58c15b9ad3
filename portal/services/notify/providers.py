"""Which backend carries each channel with the current configuration.

Twilio for SMS and voice when its credentials are set, SMTP for email when
``SMTP_URL`` is, and the outbox for any channel without credentials.
"""

from __future__ import annotations

from flask import current_app

from portal.models.enums import Channel
from portal.services.notify.backends import Backend
from portal.services.notify.outbox import OutboxBackend
from portal.services.notify.smtp_backend import SmtpEmail
from portal.services.notify.twilio_backend import TwilioSms, TwilioVoice


def twilio_configured() -> bool:
    """Whether Twilio credentials and a sender number are configured."""
    config = current_app.config
    return all(
        config.get(k) for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
    )


def smtp_configured() -> bool:
    """Whether an SMTP server is configured for email."""
    return bool(current_app.config.get("SMTP_URL"))


def outbox_active() -> bool:
    """Whether some channel falls back to the outbox (no credentials for it)."""
    return not (twilio_configured() and smtp_configured())


def backend_for(channel: Channel) -> Backend:
    """Return the backend that carries ``channel`` with the current configuration."""
    if channel == Channel.SMS and twilio_configured():
        return TwilioSms()
    if channel == Channel.VOICE and twilio_configured():
        return TwilioVoice()
    if channel == Channel.EMAIL and smtp_configured():
        return SmtpEmail()
    return OutboxBackend()
