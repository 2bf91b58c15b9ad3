"""``portal simulate``: the fill simulation, on scratch databases beside the live one."""

from __future__ import annotations

import json
import logging
import sys

import click
from flask import current_app
from flask.cli import with_appcontext


def _cell(key: str, value: object) -> str:
    """One figure as the table shows it."""
    if value is None:
        return "—"
    if key.startswith(("fill_rate", "acceptance")):
        return f"{100 * float(value):.1f}%"  # type: ignore[arg-type]
    if key == "revenue_recovered_cents":
        return f"{int(value) / 100:,.0f}"  # type: ignore[call-overload]
    return str(value)


def format_table(result) -> str:  # type: ignore[no-untyped-def]
    """The figures as a plain-text table, one row per policy."""
    from portal.simulation.figures import KEYS, LABELS

    header = ["policy"] + [LABELS[k] for k in KEYS] + ["releases"]
    rows = [
        [policy] + [_cell(k, figures[k]) for k in KEYS] + [str(result.releases[policy])]
        for policy, figures in result.figures.items()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_policies(raw: str) -> tuple[str, ...]:
    from portal.simulation import POLICIES

    names = tuple(p.strip() for p in raw.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if not names or unknown:
        raise click.BadParameter(f"choose from {', '.join(POLICIES)}", param_hint="--policies")
    return names


@click.command("simulate")
@click.option("--days", type=click.IntRange(1, 120), default=30, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--policies",
    default="broadcast,sequential,waves,learned",
    show_default=True,
    help="Comma-separated: broadcast, sequential, waves, learned.",
)
@click.option("--json", "as_json", is_flag=True, help="Print an object keyed by policy.")
@with_appcontext
def simulate_command(days: int, seed: int, policies: str, as_json: bool) -> None:
    """Replay N days of a synthetic clinic per offer policy (scratch databases only)."""
    from portal.simulation import run_simulation

    chosen = parse_policies(policies)
    live_url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    for name in ("portal", "jobs", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    progress = None
    if sys.stderr.isatty():
        shown: dict[str, int] = {}

        def progress(policy: str, share: float) -> None:
            permille = int(1000 * share)
            if shown.get(policy) == permille:
                return  # redraw only when the figure changes
            shown[policy] = permille
            filled = int(30 * share)
            click.echo(
                f"\r{policy:<10} [{'#' * filled}{'.' * (30 - filled)}] {100 * share:5.1f}%",
                nl=False,
                err=True,
            )

    try:
        result = run_simulation(live_url, days=days, seed=seed, policies=chosen, progress=progress)
    except KeyboardInterrupt:
        click.echo("\ninterrupted; scratch databases dropped", err=True)
        raise SystemExit(130) from None
    if progress is not None:
        click.echo("", err=True)
    if as_json:
        click.echo(json.dumps(result.figures, indent=2))
        return
    click.echo(f"{days} simulated days, seed {seed}")
    click.echo(format_table(result))
