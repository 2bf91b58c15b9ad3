"""Operating commands: run everything, the worker, the cron process, one-off sweeps."""

from __future__ import annotations

import json
import os

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("run")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")))
def run_command(port: int) -> None:
    """Start the embedded engines (unless configured), migrate, seed, and serve all."""
    from portal.launcher import run_all

    raise SystemExit(run_all(port))


@click.command("worker")
@click.option("--burst", is_flag=True, help="Quit when the queues are empty.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Run an RQ worker (with scheduler) on the portal's queues."""
    from jobs.worker import run_worker

    run_worker(current_app._get_current_object(), burst=burst)  # type: ignore[attr-defined]


@click.command("cron")
@with_appcontext
def cron_command() -> None:
    """Run the periodic jobs (run exactly one of these)."""
    from jobs.cron import run_cron

    run_cron(current_app._get_current_object())  # type: ignore[attr-defined]


@click.command("outbox")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--to", "to", default=None, help="Only messages to this address.")
@click.option("--limit", type=int, default=200)
@with_appcontext
def outbox_command(as_json: bool, to: str | None, limit: int) -> None:
    """List the messages the outbox backend holds (development)."""
    from portal.services.notify.outbox import list_outbox

    rows = list_outbox(to=to, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"#{row['id']} {row['created_at']} {row['channel']:<5} {row['purpose'] or '-':<13} "
            f"{row['status']:<10} to {row['to']}"
        )
        click.echo(f"    {row['body'].splitlines()[0] if row['body'] else ''}")


@click.command("sweep-no-shows")
@click.option(
    "--grace-minutes",
    type=click.IntRange(0, 24 * 60),
    default=None,
    help="Minutes after the start before a missing patient counts (default: the setting).",
)
@with_appcontext
def sweep_no_shows_command(grace_minutes: int | None) -> None:
    """Mark due appointments as no-shows now (the cron job does it every 5 minutes)."""
    from portal.db import db, now_utc
    from portal.services import noshow

    now, marked, freed, restarted = now_utc(), 0, 0, 0
    while batch := noshow.mark_due(now, grace_minutes=grace_minutes):
        db.session.commit()  # each batch on its own, as the job does
        marked += len(batch)
        freed += sum(1 for n in batch if n.freed_slot_id)
        restarted += sum(len(n.restarted_slot_ids) for n in batch)
    db.session.commit()
    click.echo(
        f"{marked} no-show(s) marked; {freed} freed slot(s) offered,"
        f" {restarted} upcoming slot(s) offered again."
    )


def register(group: click.Group) -> None:
    for command in (
        worker_command,
        cron_command,
        outbox_command,
        doctor_command,
        sweep_no_shows_command,
    ):
        group.add_command(command)


@click.command("doctor")
def doctor_command() -> None:
    """Check this deployment (config, database, Redis, worker, cron, providers)."""
    from flask.cli import ScriptInfo

    from portal.config import ConfigError
    from portal.doctor import run_checks

    try:
        app = click.get_current_context().ensure_object(ScriptInfo).load_app()
    except ConfigError as exc:
        click.echo(f"✗ configuration: {exc}")
        raise SystemExit(1) from None
    with app.app_context():
        checks = run_checks(app)
    for check in checks:
        mark = "✓" if check.ok and not check.warning else ("!" if check.ok else "✗")
        click.echo(f"{mark} {check.name}: {check.message}")
    failed = [c for c in checks if not c.ok]
    click.echo("All good." if not failed else f"{len(failed)} problem(s) to fix.")
    raise SystemExit(1 if failed else 0)
