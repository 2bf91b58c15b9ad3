"""Sign-in throttling: per account whatever the address, and per address."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal.db import db
from portal.models import StaffUser
from tests import factories as f
from tests.staff.conftest import PASSWORD, post_login


def _fail(client: FlaskClient, email: str, times: int, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        assert post_login(client, email, "a wrong guess", address=address).status_code == 200


def test_five_failures_lock_the_account_from_any_address(
    client: FlaskClient, staff: StaffUser
) -> None:
    _fail(client, staff.email, 5, address="10.0.0.1")
    response = post_login(client, staff.email, PASSWORD, address="10.9.9.9")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    assert "Too many sign-in attempts" in response.text
    assert client.get("/staff/").status_code == 302


def test_lockout_is_per_account(client: FlaskClient, staff: StaffUser) -> None:
    other = f.staff_user(password=PASSWORD)
    db.session.commit()
    _fail(client, staff.email, 5)
    assert post_login(client, other.email, PASSWORD).status_code == 302


def test_unknown_emails_lock_the_same_way(client: FlaskClient) -> None:
    _fail(client, "nobody@clinic.test", 5)
    assert post_login(client, "nobody@clinic.test", "x").status_code == 429


def test_lockout_key_ignores_case_and_spaces(client: FlaskClient, staff: StaffUser) -> None:
    _fail(client, staff.email.upper(), 5)
    assert post_login(client, f" {staff.email} ", PASSWORD).status_code == 429


def test_success_clears_earlier_failures(client: FlaskClient, staff: StaffUser) -> None:
    _fail(client, staff.email, 4)
    assert post_login(client, staff.email, PASSWORD).status_code == 302
    later = client.application.test_client()
    _fail(later, staff.email, 4)
    assert post_login(later, staff.email, PASSWORD).status_code == 302


def test_twenty_failures_lock_the_address(client: FlaskClient, staff: StaffUser) -> None:
    for n in range(20):
        _fail(client, f"guess{n}@clinic.test", 1, address="10.0.0.7")
    locked = post_login(client, staff.email, PASSWORD, address="10.0.0.7")
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    # Another address, and the account itself, are unaffected.
    assert post_login(client, staff.email, PASSWORD, address="10.0.0.8").status_code == 302


def test_successes_do_not_count_against_the_address(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [f.staff_user(password=PASSWORD) for _ in range(3)]
    db.session.commit()
    monkeypatch.setitem(client.application.config, "LOGIN_LIMIT_PER_IP", "2 per 15 minutes")
    for user in users:
        browser = client.application.test_client()
        assert post_login(browser, user.email, PASSWORD, address="10.0.0.5").status_code == 302
