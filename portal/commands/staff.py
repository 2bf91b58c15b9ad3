"""Staff accounts from the command line: create one, set its password, deactivate it."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from portal.db import db
from portal.models import StaffUser
from portal.models.enums import StaffRole
from portal.services.audit import SYSTEM
from portal.services.passwords import MIN_PASSWORD_LENGTH
from portal.services.staff import (
    InvalidStaffInput,
    change_password,
    create_staff,
    find_by_email,
    set_active,
    validate_new_staff,
)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt(
        f"Password (at least {MIN_PASSWORD_LENGTH} characters)",
        hide_input=True,
        confirmation_prompt=True,
    )


@click.command("create-staff")
@click.argument("email")
@click.option("--name", required=True, help="Full name shown in the portal.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in StaffRole]),
    default=StaffRole.STAFF.value,
    show_default=True,
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def create_staff_command(email: str, name: str, role: str, password_stdin: bool) -> None:
    """Create a staff account; asks for the password unless --password-stdin."""
    try:
        # Check the details first so nobody types a password for a doomed account.
        validate_new_staff(email, name, role)
        password = _read_password(password_stdin)
        user = create_staff(email, name, role, password, SYSTEM)
    except InvalidStaffInput as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Created {user.role.value} {user.email} (id {user.id})")


def _account(email: str) -> StaffUser:
    user = find_by_email(email)
    if user is None:
        raise click.ClickException(f"there is no staff user with email {email.strip().lower()}")
    return user


@click.command("set-staff-password")
@click.argument("email")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def set_staff_password_command(email: str, password_stdin: bool) -> None:
    """Set a staff account's password; every session of the account ends."""
    user = _account(email)
    try:
        change_password(user, _read_password(password_stdin), SYSTEM)
    except InvalidStaffInput as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Password changed for {user.email}; it is signed out everywhere.")


@click.command("deactivate-staff")
@click.argument("email")
@click.option("--activate", is_flag=True, help="Let the account sign in again instead.")
@with_appcontext
def deactivate_staff_command(email: str, activate: bool) -> None:
    """Stop a staff account from signing in (or, with --activate, allow it again)."""
    user = _account(email)
    set_active(user, activate, SYSTEM)
    db.session.commit()
    state = "active again (it must sign in anew)" if activate else "deactivated and signed out"
    click.echo(f"{user.email} is {state}.")


def register(group: click.Group) -> None:
    """Add the staff commands to ``group``."""
    for command in (create_staff_command, set_staff_password_command, deactivate_staff_command):
        group.add_command(command)
