"""``portal create-staff``: add a staff account from the command line."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from portal.db import db
from portal.models.enums import StaffRole
from portal.services.audit import SYSTEM
from portal.services.passwords import MIN_PASSWORD_LENGTH
from portal.services.staff import InvalidStaffInput, create_staff, validate_new_staff


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


def register(group: click.Group) -> None:
    """Add the staff commands to ``group``."""
    group.add_command(create_staff_command)
