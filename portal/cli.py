"""The ``portal`` command: a Flask CLI group reaching the same engines as ``make run``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask.cli import FlaskGroup, ScriptInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE = PROJECT_ROOT / "instance"


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


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False)
def cli() -> None:
    """Run and manage the waitlist portal."""


def main() -> None:
    """Entry point of the ``portal`` console script."""
    args = sys.argv[1:]
    # `portal run` owns the engines itself (the launcher); everything else attaches.
    if not args or args[0] not in {"run", "--help", "-h"}:
        ensure_engines()
    from portal.commands.ops import run_command

    # `run` must work before any engine or app exists, so it sits on the group itself.
    cli.add_command(run_command)
    cli.main(args=args, prog_name="portal")


if __name__ == "__main__":
    main()
