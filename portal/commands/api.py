"""API commands: create a bearer token for the practice's scheduling system."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.db import db
from portal.services.audit import SYSTEM
from portal.services.errors import DomainError


@click.command("create-api-token")
@click.argument("name")
@with_appcontext
def create_api_token_command(name: str) -> None:
    """Create an API token called NAME and print it (it is shown only this once)."""
    from portal.services.api_tokens import create_api_token

    try:
        row, token = create_api_token(name, SYSTEM)
    except DomainError as exc:
        db.session.rollback()
        raise click.BadParameter(exc.message, param_hint="NAME") from exc
    db.session.commit()
    # The token alone on stdout, so `TOKEN=$(portal create-api-token ci)` works.
    click.echo(token)
    click.echo(
        f"API token {row.id} '{row.name}' (prefix {row.prefix}) created. "
        "Store it now: it cannot be shown again.",
        err=True,
    )


def register(group: click.Group) -> None:
    """Add the API commands to ``group``."""
    group.add_command(create_api_token_command)
