"""The ``portal`` command: a Flask CLI group reaching the same engines as ``make run``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import FlaskGroup, ScriptInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE = PROJECT_ROOT / "instance"
HELP_OPTIONS = frozenset({"--help", "-h"})
#: sysexits.h: a temporary failure; the command may be run again.
EX_TEMPFAIL = 75


def ensure_engines() -> None:
    """Point DATABASE_URL/REDIS_URL at the embedded engines unless they are set."""
    from portal import engines

    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = engines.database_url(INSTANCE)
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = engines.redis_url(INSTANCE)


def _create_app(info: ScriptInfo | None = None):
    from portal import create_app

    return create_app()


class PortalGroup(FlaskGroup):
    """A Flask CLI group that lists only its own commands.

    Flask's group builds the app to list the commands the app adds; every portal
    command is registered on the group itself, so ``portal --help`` needs neither an
    app nor a database. A command runs with the app (``with_appcontext``) as usual.
    The app is always ``create_app``, so Flask's ``--app``/``--env-file`` are left out.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.params = [p for p in self.params if p.name not in {"app", "env_file"}]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)


@click.group(
    cls=PortalGroup, create_app=_create_app, add_default_commands=False, add_version_option=False
)
def cli() -> None:
    """Run and manage the waitlist portal."""


def _needs_engines(args: list[str]) -> bool:
    """Whether the command line will run a command that uses the database and Redis."""
    # `portal run` owns the engines itself (the launcher); help needs none.
    return bool(args) and args[0] != "run" and not HELP_OPTIONS.intersection(args)


def main() -> None:
    """Entry point of the ``portal`` console script."""
    args = sys.argv[1:]
    if _needs_engines(args):
        ensure_engines()
    from flask_migrate.cli import db as db_commands

    from portal.commands import register
    from portal.commands.ops import run_command
    from portal.commands.simulate import simulate_command

    # `run` must work before any engine or app exists, so it sits on the group only.
    cli.add_command(run_command)
    # `simulate` builds apps of its own (on scratch databases): it needs ``create_app``,
    # which the app's own command list (built inside ``create_app``) cannot import back.
    cli.add_command(simulate_command)
    cli.add_command(db_commands)
    register(cli)
    try:
        cli.main(args=args, prog_name="portal")
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        from portal.web.errors import database_unavailable

        if not database_unavailable(exc):
            raise
        # A restart or an outage, not a bug: say so, and exit as "try again later".
        click.echo(
            "portal: the database is not answering (restarting?); run the command again.",
            err=True,
        )
        sys.exit(EX_TEMPFAIL)


if __name__ == "__main__":
    main()
