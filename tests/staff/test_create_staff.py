"""``portal create-staff`` and the service behind it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask.testing import FlaskCliRunner

from portal.commands.staff import create_staff_command
from portal.db import db
from portal.models import AuditEvent, StaffUser
from portal.models.enums import StaffRole
from portal.services.audit import SYSTEM
from portal.services.passwords import verify_password
from portal.services.staff import InvalidStaffInput, StaffUserExists, create_staff
from tests import factories as f

GOOD = "a long enough passphrase"


def _users() -> list[StaffUser]:
    return list(db.session.scalars(sa.select(StaffUser)))


def test_create_staff_reads_the_password_from_stdin(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        create_staff_command,
        ["Alice@Clinic.TEST", "--name", "Alice Admin", "--role", "admin", "--password-stdin"],
        input=f"{GOOD}\n",
    )
    assert result.exit_code == 0, result.output
    [user] = _users()
    assert result.output.strip() == f"Created admin alice@clinic.test (id {user.id})"
    assert user.role == StaffRole.ADMIN and user.active and user.name == "Alice Admin"
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, GOOD)
    [event] = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.created"))
    assert event.entity_id == user.id and event.actor_type == "system"


def test_create_staff_prompts_with_confirmation(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        create_staff_command, ["bob@clinic.test", "--name", "Bob"], input=f"{GOOD}\n{GOOD}\n"
    )
    assert result.exit_code == 0, result.output
    assert GOOD not in result.output  # hidden input is not echoed
    [user] = _users()
    assert user.role == StaffRole.STAFF
    assert "Created staff bob@clinic.test" in result.output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["carol@clinic.test", "--name", "Carol"], "short\n", "at least 12 characters"),
        (["not-an-email", "--name", "Carol"], f"{GOOD}\n", "not a valid email"),
        (["carol@clinic.test", "--name", "  "], f"{GOOD}\n", "name is required"),
    ],
)
def test_create_staff_refuses_bad_input(
    runner: FlaskCliRunner, args: list[str], stdin: str, message: str
) -> None:
    result = runner.invoke(create_staff_command, [*args, "--password-stdin"], input=stdin)
    assert result.exit_code == 1
    assert message in result.output
    assert _users() == []


def test_create_staff_refuses_an_existing_email(runner: FlaskCliRunner) -> None:
    f.staff_user(email="dana@clinic.test")
    db.session.commit()
    result = runner.invoke(
        create_staff_command,
        ["DANA@clinic.test", "--name", "Dana", "--password-stdin"],
        input=f"{GOOD}\n",
    )
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_create_staff_rejects_an_unknown_role(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        create_staff_command,
        ["e@clinic.test", "--name", "E", "--role", "owner", "--password-stdin"],
    )
    assert result.exit_code == 2


@pytest.mark.usefixtures("app")
def test_create_staff_service_errors_are_value_errors() -> None:
    create_staff("x@clinic.test", "X", "staff", GOOD, SYSTEM)
    with pytest.raises(StaffUserExists):
        create_staff("X@clinic.test", "X", "staff", GOOD, SYSTEM)
    with pytest.raises(InvalidStaffInput, match="role must be one of"):
        create_staff("y@clinic.test", "Y", "owner", GOOD, SYSTEM)
    assert issubclass(InvalidStaffInput, ValueError)
