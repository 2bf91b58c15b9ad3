"""Email over SMTP with the standard library: a text part and an HTML alternative.

``SMTP_URL`` is ``smtp://user:pass@host:port`` (STARTTLS on port 587 or with
``?starttls=1``; plain otherwise, for a local relay) or ``smtps://…`` (TLS from the
start). SMTP offers no delivery receipts: a message the server accepted counts as
delivered (asynchronous bounces are not processed).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

from portal.services.notify.backends import (
    AmbiguousSendError,
    PermanentSendError,
    SendError,
    TransientSendError,
)

if TYPE_CHECKING:
    from portal.models import NotificationAttempt
    from portal.services.notify.messages import Message

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool
    timeout: float


def parse_smtp_url(url: str, timeout: float = 15.0) -> SmtpSettings:
    """Read an ``smtp://`` or ``smtps://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://user:pass@host:587")
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    query = parse_qs(parts.query)
    flag = (query.get("starttls") or [""])[0].lower()
    starttls = parts.scheme == "smtp" and (
        flag in {"1", "true", "yes"} or (port == 587 and flag != "0")
    )
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=parts.scheme == "smtps",
        starttls=starttls,
        timeout=timeout,
    )


def build_email(to: str, message: Message, attempt_id: int) -> EmailMessage:
    """Return the MIME message: text, then HTML as the preferred alternative, then files."""
    email = EmailMessage()
    email["Subject"] = message.subject or current_app.config["PRACTICE_NAME"]
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = to
    email["Message-ID"] = make_msgid(domain="waitlist.portal")
    email["X-Portal-Attempt"] = str(attempt_id)
    email.set_content(message.body)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        # Bytes (base64) keep the file exact, CRLF line endings included.
        email.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
            params=attachment.params,
        )
    return email


def _response_error(code: int, stage: str) -> SendError:
    if code >= 500:
        return PermanentSendError(f"SMTP {code} at {stage}", str(code))
    return TransientSendError(f"SMTP {code} at {stage}", str(code))


class SmtpEmail:
    """Email through the configured SMTP server."""

    name = "smtp"
    transactional = False
    final_on_accept = True

    def send(self, attempt: NotificationAttempt, to: str, message: Message) -> str:
        settings = parse_smtp_url(
            current_app.config["SMTP_URL"],
            float(current_app.config.get("SMTP_TIMEOUT_SECONDS", 15)),
        )
        email = build_email(to, message, attempt.id)
        smtp = self._connect(settings)
        try:
            smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _response_error(min(codes) if codes else 550, "RCPT") from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused
            raise _response_error(exc.smtp_code, "DATA") from None
        except (smtplib.SMTPException, OSError) as exc:
            # The connection broke mid-transaction: the server may have queued it.
            raise AmbiguousSendError(f"SMTP connection lost ({type(exc).__name__})") from None
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
        return str(email["Message-ID"])[:64]

    def _connect(self, s: SmtpSettings) -> smtplib.SMTP:
        """Open a session; every failure here means nothing was sent (safe to retry)."""
        smtp: smtplib.SMTP | None = None
        try:
            if s.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            smtp.ehlo()
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                smtp.close()
            raise TransientSendError(f"SMTP unavailable ({type(exc).__name__})") from None
        return smtp
