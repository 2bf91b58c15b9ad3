"""The API blueprint: bearer-token auth and the error shape (views in the sibling modules).

Every error is ``{"error": {"code", "message", ...}}``: domain errors carry their own
code and status; database constraint violations that slip past validation become a
409/422 rather than a 500. Any error rolls the request's transaction back whole.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify

from portal.extensions import csrf, db
from portal.services.booking import lost_race
from portal.services.errors import DomainError
from portal.web.api.auth import authenticate
from portal.web.errors import database_unavailable, database_unavailable_response

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
bp.before_request(authenticate)


def error_response(code: str, message: str, status: int, **details: object) -> Response:
    """Return the API's error body with ``status``."""
    response = jsonify(error={**details, "code": code, "message": message})
    response.status_code = status
    return response


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    db.session.rollback()
    return error_response(exc.code, exc.message, exc.status, **exc.details)


@bp.errorhandler(sa.exc.IntegrityError)
def _integrity_error(exc: sa.exc.IntegrityError) -> Response:
    db.session.rollback()
    if (conflict := lost_race(exc)) is not None:
        return _domain_error(conflict)
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    log.warning("API request hit a constraint (%s)", constraint or type(exc.orig).__name__)
    return error_response("conflict", "That conflicts with the current state; retry.", 409)


@bp.errorhandler(sa.exc.OperationalError)
def _operational_error(exc: sa.exc.OperationalError) -> Response:
    """A deadlock or serialization failure lost to a concurrent request: 409, not 500."""
    if database_unavailable(exc):
        return database_unavailable_response(exc)
    db.session.rollback()
    if (conflict := lost_race(exc)) is None:
        raise exc
    return _domain_error(conflict)


@bp.errorhandler(sa.exc.DataError)
def _data_error(exc: sa.exc.DataError) -> Response:
    db.session.rollback()
    log.warning("API request carried data the database refused (%s)", type(exc.orig).__name__)
    return error_response("invalid_data", "A value is out of range or malformed.", 422)
