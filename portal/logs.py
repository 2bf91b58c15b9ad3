"""Logging set-up that keeps patient data out of log files."""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# Seven or more digits, optionally with +, spaces, dots, dashes or brackets between them.
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def mask_pii(text: str) -> str:
    """Replace anything that looks like an email address or phone number."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


class PiiFilter(logging.Filter):
    """Mask emails and phone numbers in every record, whatever the caller passed."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = mask_pii(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Install the PII filter on the root handlers (idempotent)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not any(isinstance(f, PiiFilter) for f in handler.filters):
            handler.addFilter(PiiFilter())
