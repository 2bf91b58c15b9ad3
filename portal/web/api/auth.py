"""Bearer-token authentication for the JSON API (tokens stored as SHA-256 only)."""

from __future__ import annotations

from flask import Response, g, jsonify, request

from portal.db import now_utc
from portal.services.api_tokens import TOUCH_INTERVAL, find_active_token, touch_last_used
from portal.services.audit import Actor

#: Endpoints anyone may read (the API's own description).
PUBLIC_ENDPOINTS = frozenset({"api.openapi"})


def _unauthorized(message: str, *, invalid: bool) -> Response:
    response = jsonify(error={"code": "unauthorized", "message": message})
    response.status_code = 401
    challenge = 'Bearer realm="api"'
    if invalid:
        challenge += ', error="invalid_token"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def authenticate() -> Response | None:
    """Refuse the request unless it carries a valid, unrevoked bearer token."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    token = _bearer_token()
    if token is None:
        return _unauthorized("Send Authorization: Bearer <token>.", invalid=False)
    row = find_active_token(token)
    if row is None:
        return _unauthorized("The API token is invalid or revoked.", invalid=True)
    g.api_token_id = row.id
    if row.last_used_at is None or row.last_used_at < now_utc() - TOUCH_INTERVAL:
        touch_last_used(row.id)
    return None


def api_actor() -> Actor:
    """Return the actor for the authenticated token of this request."""
    return Actor.api(g.api_token_id)
