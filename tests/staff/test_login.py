"""Signing in and out: rotation, no account enumeration, CSRF, safe redirects, audit."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.db import db
from portal.models import AuditEvent, StaffUser
from portal.services import staff as staff_service
from tests import factories as f
from tests.conftest import csrf_token_from
from tests.staff.conftest import PASSWORD, post_login


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def test_sign_in_redirects_home_on_a_fresh_session(client: FlaskClient, staff: StaffUser) -> None:
    page = client.get("/staff/login")
    with client.session_transaction() as before:
        raw_token_before = before["csrf_token"]
        before["leftover"] = "from the anonymous session"
    response = client.post(
        "/staff/login",
        data={"csrf_token": csrf_token_from(page.text), "email": staff.email, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"

    with client.session_transaction() as after:
        assert after["_user_id"] == f"{staff.id}:0"
        assert after.permanent
        assert "leftover" not in after
        assert after.get("csrf_token") != raw_token_before

    home = client.get("/staff/")
    assert home.status_code == 200
    assert csrf_token_from(home.text) != csrf_token_from(page.text)
    db.session.refresh(staff)
    assert staff.last_login_at is not None
    [event] = _events("staff.login")
    assert event.entity_id == staff.id and event.actor_id == str(staff.id)


def test_email_is_matched_case_insensitively(client: FlaskClient, staff: StaffUser) -> None:
    assert post_login(client, f"  {staff.email.upper()} ", PASSWORD).status_code == 302


def _normalised(html: str, email: str) -> str:
    html = re.sub(r'value="[^"]*\.[^"]*\.[^"]*"', 'value="TOKEN"', html)  # signed CSRF tokens
    html = re.sub(r'"X-CSRFToken": "[^"]+"', '"X-CSRFToken": "TOKEN"', html)
    return html.replace(email, "EMAIL")


def test_wrong_password_and_unknown_email_look_identical(
    client: FlaskClient, staff: StaffUser
) -> None:
    wrong = post_login(client, staff.email, "not the password")
    unknown = post_login(client, "nobody@clinic.test", "not the password")
    assert wrong.status_code == unknown.status_code == 200
    assert "Email or password is incorrect" in wrong.text
    assert _normalised(wrong.text, staff.email) == _normalised(unknown.text, "nobody@clinic.test")
    assert client.get("/staff/").status_code == 302


def test_unknown_email_still_pays_for_a_hash_check(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []
    real = staff_service.verify_password

    def spy(stored: str | None, password: str) -> bool:
        seen.append(stored)
        return real(stored, password)

    monkeypatch.setattr(staff_service, "verify_password", spy)
    post_login(client, "nobody@clinic.test", "whatever it is")
    assert seen == [None]  # verify_password spends a dummy hash's time on None


def test_inactive_account_is_refused_like_a_wrong_password(client: FlaskClient) -> None:
    user = f.staff_user(password=PASSWORD, active=False)
    db.session.commit()
    response = post_login(client, user.email, PASSWORD)
    assert response.status_code == 200
    assert "Email or password is incorrect" in response.text
    assert client.get("/staff/").status_code == 302
    [event] = _events("staff.login_failed")
    assert event.after == {"reason": "inactive"}


def test_failed_sign_in_is_audited_without_secrets(client: FlaskClient, staff: StaffUser) -> None:
    post_login(client, staff.email, "a wrong guess")
    post_login(client, "nobody@clinic.test", "a wrong guess")
    [event] = _events("staff.login_failed")  # none for the unknown email
    assert event.entity_type == "staff_user" and event.entity_id == staff.id
    assert event.after == {"reason": "bad_password"}
    assert staff.email not in str(event.after) and "wrong guess" not in str(event.after)


def test_empty_form_is_rejected_with_field_errors(client: FlaskClient) -> None:
    page = client.get("/staff/login")
    response = client.post("/staff/login", data={"csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 422
    assert "Enter your email." in response.text


def test_login_post_without_csrf_token_is_rejected(client: FlaskClient, staff: StaffUser) -> None:
    client.get("/staff/login")
    response = client.post("/staff/login", data={"email": staff.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/staff/").status_code == 302


def test_logout_without_csrf_token_is_rejected(signed_in: FlaskClient) -> None:
    assert signed_in.post("/staff/logout").status_code == 400
    assert signed_in.get("/staff/").status_code == 200


def test_logout_ends_the_session(signed_in: FlaskClient, staff: StaffUser) -> None:
    token = csrf_token_from(signed_in.get("/staff/").text)
    response = signed_in.post("/staff/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/login"
    assert "You have signed out." in signed_in.get("/staff/login").text
    assert signed_in.get("/staff/").status_code == 302
    [event] = _events("staff.logout")
    assert event.entity_id == staff.id and event.after == {"reason": "signed_out"}


def test_signed_in_user_visiting_login_goes_home(signed_in: FlaskClient) -> None:
    response = signed_in.get("/staff/login")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"


def test_next_returns_to_a_local_page(client: FlaskClient, staff: StaffUser) -> None:
    response = post_login(client, staff.email, PASSWORD, next_url="/staff/?day=2026-11-24")
    assert response.headers["Location"] == "/staff/?day=2026-11-24"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/staff/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/staff/login",
    ],
)
def test_next_never_leaves_the_site(client: FlaskClient, staff: StaffUser, target: str) -> None:
    response = post_login(client, staff.email, PASSWORD, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"


def test_login_page_drops_an_unsafe_next(client: FlaskClient) -> None:
    page = client.get("/staff/login?next=https://evil.example/")
    assert "evil.example" not in page.text


def test_anonymous_visit_redirects_to_login_with_next(client: FlaskClient) -> None:
    response = client.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/login?next=/staff/"


def test_anonymous_htmx_request_gets_hx_redirect(client: FlaskClient) -> None:
    response = client.get(
        "/staff/",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/staff/?day=x"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/staff/login?next=/staff/?day%3Dx"
    assert response.text == ""


def test_login_page_has_no_inline_script_or_style(client: FlaskClient) -> None:
    html = client.get("/staff/login").text
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert 'autocomplete="current-password"' in html
