"""Ending sessions server-side: a cookie saved earlier never opens staff pages again.

The session lives in a signed cookie, so "forgetting" it in the browser is not enough:
signing out, changing the password and deactivating the account bump the account's
``session_epoch``, and every cookie minted before that is refused.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask.testing import FlaskClient, FlaskCliRunner

from portal.commands.staff import deactivate_staff_command, set_staff_password_command
from portal.db import db
from portal.models import AuditEvent, StaffUser
from portal.services import staff as staff_service
from portal.services.audit import SYSTEM, Actor
from portal.services.passwords import verify_password
from tests.conftest import csrf_token_from
from tests.staff.conftest import PASSWORD, post_login

NEW_PASSWORD = "another long passphrase"


def _saved_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _replay(client: FlaskClient, cookie: str) -> int:
    """Put an old session cookie back and return the status of the staff home page."""
    client.set_cookie("session", cookie)
    return client.get("/staff/").status_code


def test_a_cookie_saved_before_logout_is_refused_after_it(
    signed_in: FlaskClient, staff: StaffUser
) -> None:
    saved = _saved_cookie(signed_in)
    token = csrf_token_from(signed_in.get("/staff/").text)
    assert signed_in.post("/staff/logout", data={"csrf_token": token}).status_code == 302

    signed_in.set_cookie("session", saved)
    response = signed_in.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")
    db.session.refresh(staff)
    assert staff.session_epoch == 1


def test_logout_ends_the_same_account_on_another_device(
    app, signed_in: FlaskClient, staff: StaffUser
) -> None:
    other_device = app.test_client()
    assert post_login(other_device, staff.email, PASSWORD).status_code == 302
    assert other_device.get("/staff/").status_code == 200

    token = csrf_token_from(signed_in.get("/staff/").text)
    signed_in.post("/staff/logout", data={"csrf_token": token})
    assert other_device.get("/staff/").status_code == 302


def test_signing_in_again_after_logout_works(signed_in: FlaskClient, staff: StaffUser) -> None:
    token = csrf_token_from(signed_in.get("/staff/").text)
    signed_in.post("/staff/logout", data={"csrf_token": token})
    assert post_login(signed_in, staff.email, PASSWORD).status_code == 302
    assert signed_in.get("/staff/").status_code == 200


def test_changing_the_password_ends_earlier_sessions(
    signed_in: FlaskClient, staff: StaffUser
) -> None:
    saved = _saved_cookie(signed_in)
    staff_service.change_password(staff, NEW_PASSWORD, actor=Actor.staff(staff))
    db.session.commit()

    assert _replay(signed_in, saved) == 302
    assert verify_password(staff.password_hash, NEW_PASSWORD)
    [event] = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "staff.password_changed")
    )
    assert event.entity_id == staff.id
    assert PASSWORD not in str(event.after) and NEW_PASSWORD not in str(event.after)


def test_a_reactivated_account_does_not_revive_old_sessions(
    signed_in: FlaskClient, staff: StaffUser
) -> None:
    saved = _saved_cookie(signed_in)
    staff_service.set_active(staff, False, actor=SYSTEM)
    db.session.commit()
    assert _replay(signed_in, saved) == 302

    staff_service.set_active(staff, True, actor=SYSTEM)
    db.session.commit()
    assert _replay(signed_in, saved) == 302
    actions = db.session.scalars(
        sa.select(AuditEvent.action)
        .where(AuditEvent.action.in_(["staff.deactivated", "staff.activated"]))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["staff.deactivated", "staff.activated"]


def test_set_staff_password_command_ends_sessions(
    runner: FlaskCliRunner, signed_in: FlaskClient, staff: StaffUser
) -> None:
    saved = _saved_cookie(signed_in)
    result = runner.invoke(
        set_staff_password_command, [staff.email, "--password-stdin"], input=f"{NEW_PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "signed out everywhere" in result.output
    assert _replay(signed_in, saved) == 302
    assert post_login(signed_in, staff.email, NEW_PASSWORD).status_code == 302


def test_set_staff_password_refuses_a_short_password(
    runner: FlaskCliRunner, staff: StaffUser
) -> None:
    result = runner.invoke(
        set_staff_password_command, [staff.email, "--password-stdin"], input="short\n"
    )
    assert result.exit_code != 0
    assert "at least" in result.output
    db.session.refresh(staff)
    assert staff.session_epoch == 0


def test_deactivate_staff_command_ends_sessions(
    runner: FlaskCliRunner, signed_in: FlaskClient, staff: StaffUser
) -> None:
    saved = _saved_cookie(signed_in)
    result = runner.invoke(deactivate_staff_command, [staff.email])
    assert result.exit_code == 0, result.output
    assert _replay(signed_in, saved) == 302
    assert post_login(signed_in, staff.email, PASSWORD).status_code == 200  # refused


def test_commands_name_an_unknown_account(runner: FlaskCliRunner) -> None:
    result = runner.invoke(deactivate_staff_command, ["nobody@clinic.test"])
    assert result.exit_code != 0
    assert "no staff user" in result.output
