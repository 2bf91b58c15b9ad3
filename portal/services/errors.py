"""Domain errors: a stable machine code, a message for people, and an HTTP status hint.

Services raise these; the API turns them into ``{"error": {"code", "message", ...}}``
and the staff pages into a flash message. Never put patient data in ``details``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A request the domain refuses, with a stable ``code`` callers can rely on."""

    default_code: ClassVar[str] = "unprocessable"
    default_status: ClassVar[int] = 422
    default_message: ClassVar[str] = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.code: str = code or self.default_code
        self.status: int = status or self.default_status
        self.message: str = message or self.default_message
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """Return the error body: details first, so they can never mask code or message."""
        return {**self.details, "code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status})"


class NotFound(DomainError):
    """Something the caller named does not exist (or is not theirs to see)."""

    default_code = "not_found"
    default_status = 404
    default_message = "Not found."


class Conflict(DomainError):
    """The request clashes with the current state (already taken, overlapping)."""

    default_code = "conflict"
    default_status = 409
    default_message = "The request conflicts with the current state."


class ValidationFailed(DomainError):
    """Input failed validation; ``details["fields"]`` lists ``{loc, message, type}``."""

    default_code = "validation_error"
    default_status = 422
    default_message = "Some fields are missing or invalid."

    def __init__(self, fields: list[dict[str, Any]], message: str | None = None) -> None:
        super().__init__(message, details={"fields": fields})
