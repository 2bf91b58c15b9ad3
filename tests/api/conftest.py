"""API fixtures: a bearer token made through the service, and a client that sends it."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.db import db
from portal.services.api_tokens import create_api_token
from portal.services.audit import SYSTEM


class ApiClient:
    """The test client with ``Authorization: Bearer`` set on every request."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.token = token

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} | (extra or {})

    def get(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> TestResponse:
        return self.client.get(path, headers=self._headers(headers), **kw)

    def post(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> TestResponse:
        return self.client.post(path, headers=self._headers(headers), **kw)

    def patch(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> TestResponse:
        return self.client.patch(path, headers=self._headers(headers), **kw)


@pytest.fixture
def token(app: Any) -> str:
    _, raw = create_api_token("tests", SYSTEM)
    db.session.commit()
    return raw


@pytest.fixture
def api(client: FlaskClient, token: str) -> ApiClient:
    return ApiClient(client, token)
