"""Bearer-token authentication, and the command that creates tokens."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient, FlaskCliRunner

from portal.commands.api import create_api_token_command
from portal.db import db, now_utc
from portal.models import ApiToken, AuditEvent
from portal.services.api_tokens import create_api_token, revoke_api_token
from portal.services.audit import SYSTEM
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.usefixtures("app")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer not-a-token"],
)
def test_requests_without_a_valid_token_are_unauthorized(
    client: FlaskClient, token: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    resp = client.get("/api/v1/locations", headers=headers)
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_token_is_accepted_with_any_scheme_case(client: FlaskClient, token: str) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        resp = client.get("/api/v1/locations", headers={"Authorization": f"{scheme} {token}"})
        assert resp.status_code == 200


def test_a_revoked_token_is_refused(api: ApiClient) -> None:
    row = db.session.scalars(sa.select(ApiToken)).one()
    revoke_api_token(row, SYSTEM)
    resp = api.get("/api/v1/locations")
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_unauthorized_posts_write_nothing(client: FlaskClient) -> None:
    resp = client.post("/api/v1/patients", json={"name": "Ana", "phone": "+12125550123"})
    assert resp.status_code == 401
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == 0


def test_openapi_document_needs_no_token(client: FlaskClient) -> None:
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_only_the_hash_and_a_prefix_are_stored() -> None:
    row, token = create_api_token("  scheduler  ", SYSTEM)
    assert row.name == "scheduler"
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:8]
    assert len(token) >= 40
    assert token not in str([row.name, row.token_hash, row.prefix])


def test_last_used_is_refreshed_at_most_once_a_minute(api: ApiClient) -> None:
    row = db.session.scalars(sa.select(ApiToken)).one()
    assert api.get("/api/v1/locations").status_code == 200
    db.session.refresh(row)
    first = row.last_used_at
    assert first is not None

    api.get("/api/v1/locations")
    db.session.refresh(row)
    assert row.last_used_at == first

    row.last_used_at = now_utc() - timedelta(minutes=2)
    api.get("/api/v1/locations")
    db.session.refresh(row)
    assert row.last_used_at > first


def test_create_api_token_command_prints_the_token_once(runner: FlaskCliRunner) -> None:
    result = runner.invoke(create_api_token_command, ["ci system"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert "cannot be shown again" in result.stderr
    row = db.session.scalars(sa.select(ApiToken)).one()
    assert row.name == "ci system"
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    events = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert events == ["api_token.created"]


def test_create_api_token_command_refuses_a_blank_name(runner: FlaskCliRunner) -> None:
    result = runner.invoke(create_api_token_command, ["   "])
    assert result.exit_code != 0
    assert db.session.scalar(sa.select(sa.func.count(ApiToken.id))) == 0
