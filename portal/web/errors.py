"""Error responses: a friendly page for people, a JSON body with a stable code for machines.

Every HTTP error goes through one handler. Unhandled exceptions arrive as a 500
``InternalServerError``: Flask has already logged them (path, method and traceback,
never the request body), and with ``PROPAGATE_EXCEPTIONS`` (testing, debug) they are
re-raised instead, so tests still see the real error.
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa
from flask import current_app, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from portal.clock import system_seconds
from portal.web.expired import session_expired_response

if TYPE_CHECKING:
    from flask import Flask, Response


class ErrorText(NamedTuple):
    code: str
    title: str
    message: str


ERROR_TEXTS: dict[int, ErrorText] = {
    400: ErrorText(
        "bad_request",
        "Something in that request wasn't right",
        "Please go back, check the details and try again.",
    ),
    403: ErrorText(
        "forbidden",
        "You don't have access to this page",
        "If you think you should, please ask your practice administrator.",
    ),
    404: ErrorText(
        "not_found",
        "We couldn't find that page",
        "The link may be mistyped or out of date. Please check it, or contact the clinic.",
    ),
    405: ErrorText(
        "method_not_allowed",
        "That action isn't available here",
        "Please go back and use the buttons on the page.",
    ),
    410: ErrorText(
        "gone",
        "This link is no longer active",
        "Links and offers expire after a while. If you still want an appointment, "
        "contact the clinic and we'll gladly help.",
    ),
    413: ErrorText(
        "payload_too_large",
        "That was too large to send",
        "Please try again with a smaller file or less text.",
    ),
    422: ErrorText(
        "unprocessable",
        "We couldn't process that",
        "Some of the details weren't valid. Please check them and try again.",
    ),
    429: ErrorText(
        "rate_limited",
        "Too many requests",
        "You've made a lot of requests in a short time. Please wait a moment and try again.",
    ),
    500: ErrorText(
        "internal_error",
        "Something went wrong on our side",
        "It's not you, it's us. Please try again in a few minutes.",
    ),
    503: ErrorText(
        "unavailable",
        "We'll be right back",
        "The portal is restarting a part of itself. Please try again in a moment.",
    ),
}

#: How long a client should wait while the database restarts (it recovers in seconds).
DATABASE_RETRY_SECONDS = 5

CSRF_TEXT = ErrorText(
    "csrf_failed",
    "Your session expired",
    "Your session expired, please reload the page and try again.",
)

#: Patient pages: their errors use the patient layout and name the number to call.
PATIENT_PATHS = ("/o/", "/a/")

#: Codes whose exception description is never shown: it is technical or names a limit.
_GENERIC_ONLY = frozenset({429, 500, 503})

_FALLBACK_PAGE = (
    "<!doctype html><html lang='en'><meta charset='utf-8'><title>{title}</title>"
    "<h1>{title}</h1><p>{message}</p></html>"
)


def wants_json() -> bool:
    """Return whether to answer in JSON: API and webhook paths, or a client preferring it."""
    if request.path.startswith(("/api/", "/webhooks/")):
        return True
    accept = request.accept_mimetypes
    best = accept.best_match(("text/html", "application/json"))
    return best == "application/json" and accept[best] > accept["text/html"]


def _text_for(error: HTTPException) -> tuple[ErrorText, str]:
    """Return the error's text and the message to show."""
    if isinstance(error, CSRFError):
        return CSRF_TEXT, CSRF_TEXT.message
    code = error.code or 500
    text = ERROR_TEXTS.get(code)
    if text is None:
        name = error.name or "Error"
        stable = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "error"
        text = ErrorText(stable, name, error.description or "")
    # A view that calls abort(404, "That offer was withdrawn.") wrote that text for
    # the reader; werkzeug's stock descriptions are replaced by the friendlier ones.
    custom = error.description and error.description != type(error).description
    if custom and code not in _GENERIC_ONLY:
        return text, str(error.description)
    return text, text.message


def _retry_after_seconds(error: HTTPException) -> int | None:
    """Return how long a rate-limited client should wait, if it can be told."""
    value = getattr(error, "retry_after", None)  # werkzeug's TooManyRequests(retry_after=...)
    if isinstance(value, datetime):
        return max(1, int(value.timestamp() - system_seconds()))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(1, int(value))
    # Flask-Limiter's RateLimitExceeded carries the limit, not a delay: ask the limiter
    # when the window resets, else fall back to the window's length.
    for limiter in current_app.extensions.get("limiter", ()):
        try:
            current = limiter.current_limit
            if current is not None and current.breached:
                return max(1, int(current.reset_at - system_seconds()))
        except Exception:  # storage unreachable: the window length below is good enough
            current_app.logger.warning("Could not read the rate-limit window", exc_info=True)
    limit = getattr(getattr(error, "limit", None), "limit", None)
    if limit is not None:
        return max(1, int(limit.get_expiry()))
    return None


def _patient_context() -> dict[str, object]:
    """The patient layout's variables (the number to call) for an error on a patient page."""
    from portal.web.patient import error_context

    try:
        return error_context(request.path)
    except Exception:  # the database may be what failed: the configured number will do
        current_app.logger.warning("No clinic phone for the error page", exc_info=True)
        phone = current_app.config.get("CLINIC_PHONE") or None
        return {"practice_name": current_app.config["PRACTICE_NAME"], "location_phone": phone}


def _render_page(status: int, text: ErrorText, message: str, retry_after: int | None) -> str:
    page = {
        "code": status,
        "title": text.title,
        "message": message,
        "retry_after": retry_after,
        "error_page": True,
    }
    try:
        if request.path.startswith(PATIENT_PATHS):
            return render_template("patient/error.html", **page, **_patient_context())
        return render_template("errors/error.html", **page)
    except Exception:
        # The error page must never fail itself (a broken template, a missing global).
        current_app.logger.exception("Error page could not be rendered")
        return _FALLBACK_PAGE.format(title=escape(text.title), message=escape(message))


def handle_http_error(error: HTTPException) -> Response:
    """Turn any HTTP error into a JSON body or a friendly page with the same status."""
    status = error.code or 500
    text, message = _text_for(error)
    retry_after = _retry_after_seconds(error) if status in (429, 503) else None

    if wants_json():
        response = jsonify(error={"code": text.code, "message": message})
    else:
        response = make_response(_render_page(status, text, message, retry_after))
    response.status_code = status

    # Keep meaningful headers from the exception (Allow on 405, WWW-Authenticate on 401).
    for name, value in error.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def handle_csrf_error(error: CSRFError) -> Response:
    """A form from an expired session: a page that says what to do (JSON for machines)."""
    if wants_json():
        return handle_http_error(error)
    try:
        return session_expired_response(error)
    except Exception:  # never fail on top of a failure: the plain error page will do
        current_app.logger.exception("Session-expired page could not be rendered")
        return handle_http_error(error)


def database_unavailable(exc: BaseException) -> bool:
    """Whether a database error means "the server is not reachable right now".

    No SQLSTATE (the connection was refused or dropped), class 08 (connection
    exception) and 57P01–57P03 (shutting down, crashed, starting up): a restart, not a
    bug. Anything else (a constraint, a deadlock, bad SQL) is not this.
    """
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return False
    if getattr(exc, "connection_invalidated", False):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _RESTARTING


_RESTARTING = frozenset({"57P01", "57P02", "57P03"})


def database_unavailable_response(exc: sa.exc.DBAPIError) -> Response:
    """503 with Retry-After: the request may be sent again once the database is back."""
    from portal.db import db

    current_app.logger.warning("database unavailable (%s)", type(exc.orig).__name__)
    with suppress(sa.exc.DBAPIError):  # the connection is gone; the pool discards it
        db.session.rollback()
    return handle_http_error(ServiceUnavailable(retry_after=DATABASE_RETRY_SECONDS))


def handle_database_error(exc: sa.exc.DBAPIError) -> Response:
    if database_unavailable(exc):
        return database_unavailable_response(exc)
    raise exc


def end_session(exc: BaseException | None) -> None:
    """End the request's session; when its connection died (a restart), drop it unrolled.

    Ending a session rolls back on its connection; on a connection PostgreSQL closed
    that raises in the teardown, past every error handler, and the answer already made
    became a 500. Registered after Flask-SQLAlchemy's own teardown, so it runs first.
    """
    from portal.db import db

    try:
        db.session.remove()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
        if not database_unavailable(error):
            raise
        current_app.logger.warning("database connection lost at the end of a request")
        db.session().invalidate()  # discard the connection without a rollback
        db.session.remove()


def init_app(app: Flask) -> None:
    """Register the error handlers on ``app``."""
    app.teardown_appcontext(end_session)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(sa.exc.OperationalError, handle_database_error)
    app.register_error_handler(sa.exc.InterfaceError, handle_database_error)
