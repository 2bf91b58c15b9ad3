"""Session lifetime: idle sign-out, absolute lifetime, epoch bumps, admin-only views."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_login import login_user
from werkzeug.exceptions import Forbidden

from portal.db import db
from portal.models import AuditEvent, StaffUser
from portal.models.enums import StaffRole
from portal.web.staff import admin_required
from portal.web.staff.auth import LOGIN_AT, SEEN_AT
from tests import factories as f


def _age(client: FlaskClient, key: str, seconds: int) -> None:
    with client.session_transaction() as session:
        session[key] -= seconds


def test_idle_session_is_signed_out_with_a_message(signed_in: FlaskClient) -> None:
    _age(signed_in, SEEN_AT, 15 * 60 + 5)
    response = signed_in.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")
    page = signed_in.get(response.headers["Location"])
    assert "You were signed out after 15 minutes of inactivity" in page.text
    assert signed_in.get("/staff/").status_code == 302
    reasons = db.session.scalars(
        sa.select(AuditEvent.after).where(AuditEvent.action == "staff.logout")
    ).all()
    assert reasons == [{"reason": "idle"}]


def test_activity_keeps_the_session_alive(signed_in: FlaskClient) -> None:
    _age(signed_in, SEEN_AT, 14 * 60)
    assert signed_in.get("/staff/").status_code == 200
    with signed_in.session_transaction() as session:
        assert time.time() - session[SEEN_AT] < 5
    _age(signed_in, SEEN_AT, 14 * 60)
    assert signed_in.get("/staff/").status_code == 200


def test_background_refresh_is_not_activity(signed_in: FlaskClient) -> None:
    _age(signed_in, SEEN_AT, 10 * 60)
    response = signed_in.get("/staff/", headers={"X-Background-Refresh": "1"})
    assert response.status_code == 200
    with signed_in.session_transaction() as session:
        assert time.time() - session[SEEN_AT] >= 10 * 60


def test_idle_htmx_request_gets_hx_redirect(signed_in: FlaskClient) -> None:
    _age(signed_in, SEEN_AT, 16 * 60)
    response = signed_in.get("/staff/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/staff/login")


def test_session_ends_after_its_absolute_lifetime(signed_in: FlaskClient) -> None:
    _age(signed_in, LOGIN_AT, 12 * 3600 + 60)  # active a moment ago, but signed in too long
    response = signed_in.get("/staff/")
    assert response.status_code == 302
    page = signed_in.get(response.headers["Location"])
    assert "Your session ended after 12 hours" in page.text


def test_session_without_timestamps_is_not_trusted(signed_in: FlaskClient) -> None:
    with signed_in.session_transaction() as session:
        del session[LOGIN_AT]
    assert signed_in.get("/staff/").status_code == 302


def test_bumping_the_epoch_ends_existing_sessions(signed_in: FlaskClient, staff: StaffUser) -> None:
    staff.session_epoch += 1
    db.session.commit()
    assert signed_in.get("/staff/").status_code == 302


def test_deactivating_an_account_ends_its_sessions(
    signed_in: FlaskClient, staff: StaffUser
) -> None:
    staff.active = False
    db.session.commit()
    assert signed_in.get("/staff/").status_code == 302


@pytest.mark.parametrize("raw", ["1", "1:", ":0", "x:0", "1:y", "999:0"])
def test_malformed_session_ids_are_anonymous(client: FlaskClient, raw: str) -> None:
    f.staff_user()
    db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = raw
        session[LOGIN_AT] = session[SEEN_AT] = int(time.time())
    assert client.get("/staff/").status_code == 302


@pytest.mark.parametrize(("role", "allowed"), [(StaffRole.ADMIN, True), (StaffRole.STAFF, False)])
def test_admin_required(app: Flask, role: StaffRole, allowed: bool) -> None:
    user = f.staff_user(role=role)

    @admin_required
    def settings() -> str:
        return "ok"

    with app.test_request_context("/staff/settings"):
        login_user(user)
        if allowed:
            assert settings() == "ok"
        else:
            with pytest.raises(Forbidden):
                settings()
