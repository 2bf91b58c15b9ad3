"""Helpers for the staff portal tests: signing in through the real form."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.db import db
from portal.models import StaffUser
from tests import factories as f
from tests.conftest import csrf_token_from

PASSWORD = "correct horse battery"


def post_login(
    client: FlaskClient,
    email: str,
    password: str,
    *,
    next_url: str | None = None,
    address: str = "10.0.0.1",
) -> TestResponse:
    """Load the login page for a CSRF token, then submit the form from ``address``."""
    environ = {"REMOTE_ADDR": address}
    page = client.get("/staff/login", environ_base=environ)
    data: dict[str, Any] = {
        "csrf_token": csrf_token_from(page.text),
        "email": email,
        "password": password,
    }
    if next_url is not None:
        data["next"] = next_url
    return client.post("/staff/login", data=data, environ_base=environ)


@pytest.fixture
def staff() -> StaffUser:
    user = f.staff_user(password=PASSWORD)
    db.session.commit()
    return user


@pytest.fixture
def signed_in(client: FlaskClient, staff: StaffUser) -> FlaskClient:
    response = post_login(client, staff.email, PASSWORD)
    assert response.status_code == 302
    return client


HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin() -> StaffUser:
    from portal.models.enums import StaffRole

    user = f.staff_user(password=PASSWORD, role=StaffRole.ADMIN, name="Ada Admin")
    db.session.commit()
    return user


@pytest.fixture
def signed_in_admin(client: FlaskClient, admin: StaffUser) -> FlaskClient:
    response = post_login(client, admin.email, PASSWORD)
    assert response.status_code == 302
    return client


def form_token(client: FlaskClient, path: str = "/staff/") -> str:
    """The CSRF token of a staff page (any page carries it in the htmx header)."""
    return csrf_token_from(client.get(path).text)
