"""API tokens for the practice's scheduling system: shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import ApiToken
from portal.services import audit
from portal.services.audit import Action, Actor
from portal.services.errors import DomainError

PREFIX_LENGTH = 8
#: Bearer values longer than this are refused before hashing.
MAX_TOKEN_LENGTH = 200
#: ``last_used_at`` is refreshed at most this often per token.
TOUCH_INTERVAL = timedelta(minutes=1)


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a token (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(name: str, actor: Actor) -> tuple[ApiToken, str]:
    """Create a token named ``name``; return the row and the token (never stored)."""
    clean = " ".join((name or "").split())
    if not clean or len(clean) > 80:
        raise DomainError("Give the token a name of 1 to 80 characters.", code="invalid_name")
    token = secrets.token_urlsafe(32)
    row = ApiToken(name=clean, token_hash=hash_token(token), prefix=token[:PREFIX_LENGTH])
    db.session.add(row)
    db.session.flush()
    audit.record(actor, Action.API_TOKEN_CREATED, row, after={"name": clean, "prefix": row.prefix})
    return row, token


def revoke_api_token(token: ApiToken, actor: Actor) -> None:
    """Revoke a token; requests bearing it are refused from now on."""
    if token.revoked_at is not None:
        return
    token.revoked_at = now_utc()
    audit.record(actor, Action.API_TOKEN_REVOKED, token, after={"revoked_at": token.revoked_at})


def find_active_token(token: str) -> ApiToken | None:
    """Return the unrevoked token row matching ``token``, if any."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.session.scalars(
        sa.select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    ).first()


def touch_last_used(token_id: int) -> None:
    """Record use of a token, at most once per interval, outside the caller's transaction.

    Bookkeeping, not a state change: no audit event, and it survives the request
    rolling back.
    """
    now = now_utc()
    stmt = (
        sa.update(ApiToken)
        .where(
            ApiToken.id == token_id,
            sa.or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - TOUCH_INTERVAL),
        )
        .values(last_used_at=now)
    )
    with db.engine.begin() as conn:
        conn.execute(stmt)
