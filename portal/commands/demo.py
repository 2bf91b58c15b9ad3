"""``portal demo``: load the demo practice."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.db import db


@click.command("demo")
@click.option("--reset", is_flag=True, help="Empty the database first (development only).")
@click.option("--if-empty", is_flag=True, help="Do nothing unless the database is empty.")
@click.option("--print-login", is_flag=True, help="Only print the demo staff logins.")
@with_appcontext
def demo_command(reset: bool, if_empty: bool, print_login: bool) -> None:
    """Load demo locations, practitioners, services, slots, patients and a waitlist."""
    from portal.services import demo

    if print_login:
        for email, _, role, password in demo.DEMO_LOGINS:
            click.echo(f"{role.value:<5}  {email} / {password}")
        return
    if current_app.config["PORTAL_ENV"] == "production":
        raise click.ClickException("refusing to load demo data in production")
    if reset:
        demo.reset_all()
    elif not demo.is_empty():
        if if_empty:
            click.echo("Database already has data; demo not loaded.")
            return
        raise click.ClickException("the database is not empty (use --reset to start over)")
    counts = demo.load_demo()
    db.session.commit()
    click.echo("Demo loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def register(group: click.Group) -> None:
    group.add_command(demo_command)
