"""Logging set-up that keeps patient data out of log files.

Masking must cost time in proportion to the message, whatever a client sent: every
repetition in the patterns is bounded, so each position is tried a bounded number of
times (an unbounded ``[\\w.+-]+@`` rescanned a 100 KB field from every offset: 28 s).
A message is also cut after ``MAX_LOGGED_CHARS``; an address straddling the cut is
masked whole, not half-logged.
"""

from __future__ import annotations

import logging
import re

#: Longest message written to the log; the rest is replaced by a note of its length.
MAX_LOGGED_CHARS = 2000

# RFC 5321 limits: local part 64, domain labels 63. (Of a longer local part the head is
# left, never the whole address.) Phones: E.164 (+ and 8-15 digits) or a North-American
# style 3-3-4 number with separators.
_EMAIL = r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"
_PHONE = r"\+\d{8,15}\b|\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b"
_PII = re.compile(f"(?P<email>{_EMAIL})|(?P<phone>{_PHONE})")
#: Longer than any match of ``_PII`` (an address: 64 + 1 + 9 × 64).
_LONGEST_MATCH = 1024


def _mask(match: re.Match[str]) -> str:
    return f"[{match.lastgroup}]"


def mask_pii(text: str) -> str:
    """Replace anything that looks like an email address or phone number."""
    return _PII.sub(_mask, text)


def loggable(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """Return ``text`` masked and cut after ``limit`` characters, with a note of the cut.

    Whatever starts before the cut is masked whole, even if it ends after it.
    """
    if len(text) <= limit:
        return mask_pii(text)
    window = text[: limit + _LONGEST_MATCH]  # every match starting before `limit` ends here
    parts: list[str] = []
    position = 0
    for match in _PII.finditer(window):
        if match.start() >= limit:
            break
        parts += [window[position : match.start()], _mask(match)]
        position = match.end()
    parts.append(window[position:limit])
    left = len(text) - max(position, limit)
    return "".join(parts) + f"… [{left} more characters not logged]"


class PiiFilter(logging.Filter):
    """Mask emails and phone numbers in every record and cap its length."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        shown = loggable(message)
        if shown != message:
            record.msg, record.args = shown, None
        return True


class MaskingFormatter(logging.Formatter):
    """Mask what the filter cannot reach: tracebacks and stack text added at format time."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_pii(super().format(record))


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def protect(handler: logging.Handler) -> None:
    """Make ``handler`` write no e-mail address or phone number (idempotent)."""
    if not any(isinstance(f, PiiFilter) for f in handler.filters):
        handler.addFilter(PiiFilter())
    if not isinstance(handler.formatter, MaskingFormatter):
        current = handler.formatter
        handler.setFormatter(
            MaskingFormatter(
                current._fmt if current else LOG_FORMAT, current.datefmt if current else None
            )
        )


def configure_logging(level: int = logging.INFO) -> None:
    """Install the masking on the root handlers (idempotent)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=LOG_FORMAT)
    # Alembic announces every plugin it loads at INFO; that is noise in `make run`.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    for handler in root.handlers:
        protect(handler)
