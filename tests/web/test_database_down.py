"""While PostgreSQL restarts, requests get 503 with Retry-After, never a 500.

Found by the soak (bench/soak.py): during a PostgreSQL restart every API call, patient
page and webhook answered 500 "internal error" — clients and Twilio treat a 503 with
Retry-After as "try again shortly", and monitoring tells an outage from a bug.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from portal import create_app
from portal.db import db, now_utc
from portal.services.links import offer_token
from tests.conftest import TEST_SECRET
from tests.fakes.smtp_server import free_port


@pytest.fixture
def down_client(app_config: dict[str, object]) -> Iterator[FlaskClient]:
    """A portal whose database refuses connections (nothing listens on its port)."""
    url = make_url(str(app_config["SQLALCHEMY_DATABASE_URI"])).set(
        host="127.0.0.1", port=free_port(), query={}
    )
    config = app_config | {
        "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False),
        "SECRET_KEY": TEST_SECRET,
        "PROPAGATE_EXCEPTIONS": False,
        "TESTING": False,
        "RATELIMIT_ENABLED": False,
    }
    down: Flask = create_app(config)
    yield down.test_client()
    with down.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    ("method", "path", "json_expected"),
    [
        ("GET", "/api/v1/slots/1", True),
        ("POST", "/api/v1/slots/1/release", True),
        ("GET", "/o/{offer_token}", False),
    ],
)
def test_database_down_is_503_with_retry_after(
    down_client: FlaskClient, method: str, path: str, json_expected: bool
) -> None:
    with down_client.application.app_context():
        token = offer_token(1, 1, now_utc() + timedelta(days=1))
    headers = {"Authorization": "Bearer some-token"}
    response = down_client.open(path.format(offer_token=token), method=method, headers=headers)
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert response.headers["Retry-After"].isdigit()
    if json_expected:
        assert response.json["error"]["code"] == "unavailable"
