"""Sign-in throttling: per account and address, per address, and per account for strangers.

Nobody can lock a staff member out by knowing their e-mail: the guesser's own address
runs out, guesses spread over many addresses slow down, and the real user's browser
(device cookie) and usual network still get in.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal.db import db
from portal.models import StaffUser
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.staff.conftest import PASSWORD, post_login


def _fail(client: FlaskClient, email: str, times: int, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        assert post_login(client, email, "a wrong guess", address=address).status_code == 200


def test_five_failures_lock_that_account_from_that_address_only(
    client: FlaskClient, staff: StaffUser
) -> None:
    _fail(client, staff.email, 5, address="10.0.0.1")
    response = post_login(client, staff.email, PASSWORD, address="10.0.0.1")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    assert "Too many sign-in attempts" in response.text
    assert client.get("/staff/").status_code == 302
    # The real user, elsewhere, is not locked out by someone else's guesses.
    elsewhere = client.application.test_client()
    assert post_login(elsewhere, staff.email, PASSWORD, address="10.9.9.9").status_code == 302


def _signed_in_once(client: FlaskClient, staff: StaffUser, address: str) -> FlaskClient:
    """The real user's browser: it signed in before (device cookie), then signed out."""
    assert post_login(client, staff.email, PASSWORD, address=address).status_code == 302
    page = client.get("/staff/", environ_base={"REMOTE_ADDR": address})
    client.post("/staff/logout", data={"csrf_token": csrf_token_from(page.text)})
    return client


def test_a_guess_spread_over_many_addresses_slows_down_strangers_only(
    client: FlaskClient, staff: StaffUser
) -> None:
    usual = _signed_in_once(client, staff, address="192.168.1.20")
    attacker = client.application.test_client()
    for n in range(10):
        _fail(attacker, staff.email, 1, address=f"203.0.113.{n}")
    stranger = client.application.test_client()
    refused = post_login(stranger, staff.email, PASSWORD, address="198.51.100.7")
    assert refused.status_code == 429
    # The real user's own browser, even from a new network, and their usual network
    # from a new browser, both still get in.
    assert post_login(usual, staff.email, PASSWORD, address="172.16.0.9").status_code == 302
    new_browser = client.application.test_client()
    assert post_login(new_browser, staff.email, PASSWORD, address="192.168.1.20").status_code == 302


def test_a_device_cookie_works_only_for_its_own_account(
    client: FlaskClient, staff: StaffUser
) -> None:
    other = f.staff_user(password=PASSWORD)
    db.session.commit()
    mine = _signed_in_once(client, staff, address="192.168.1.20")
    for n in range(10):
        _fail(client.application.test_client(), other.email, 1, address=f"203.0.113.{n}")
    assert post_login(mine, other.email, PASSWORD, address="172.16.0.9").status_code == 429


def test_lockout_is_per_account(client: FlaskClient, staff: StaffUser) -> None:
    other = f.staff_user(password=PASSWORD)
    db.session.commit()
    _fail(client, staff.email, 5)
    assert post_login(client, other.email, PASSWORD).status_code == 302


def test_unknown_emails_lock_the_same_way(client: FlaskClient) -> None:
    _fail(client, "nobody@clinic.test", 5)
    assert post_login(client, "nobody@clinic.test", "x").status_code == 429
    for n in range(5):
        _fail(client.application.test_client(), "nobody@clinic.test", 1, address=f"10.1.0.{n}")
    assert post_login(client, "nobody@clinic.test", "x", address="10.2.0.1").status_code == 429


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
