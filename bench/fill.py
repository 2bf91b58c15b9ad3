"""Fill simulation benchmark: the policy table for several seeds, and the issue's goals.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    .venv/bin/python bench/fill.py --days 30 --seeds 1,2,3

The scratch databases go on the server of ``TEST_DATABASE_URL`` (else ``DATABASE_URL``,
else the embedded PostgreSQL of ``instance/``) and are dropped afterwards. It prints
one table per seed, the mean over seeds, whether each goal of the learned policy is
met (and by how far), and how long it took.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal import create_app
from portal.commands.simulate import format_table
from portal.engines import database_url, normalise_database_url
from portal.simulation import POLICIES, Result, run_simulation
from portal.simulation.figures import KEYS

INSTANCE = Path(__file__).resolve().parent.parent / "instance"
BASELINES = ("broadcast", "sequential", "waves")


def _live_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    return normalise_database_url(url) if url else database_url(INSTANCE)


def _mean(results: list[Result]) -> Result:
    figures = {}
    for policy in results[0].figures:
        figures[policy] = {}
        for key in KEYS:
            values = [r.figures[policy][key] for r in results if r.figures[policy][key] is not None]
            mean = statistics.fmean(values) if values else None
            figures[policy][key] = None if mean is None else round(mean, 3)
    releases = {p: round(statistics.fmean(r.releases[p] for r in results)) for p in figures}
    return Result(0, results[0].days, figures, releases, {})


def _goals(mean: Result) -> list[str]:
    learned = mean.figures.get("learned")
    if learned is None:
        return ["(the learned policy was not run)"]
    lines = []

    def check(name: str, ok: bool, detail: str) -> None:
        lines.append(f"{'met ' if ok else 'MISSED'}  {name}: {detail}")

    fill_2h = learned["fill_rate_2h"] or 0.0
    check("fills ≥ 60% of slots released ≥ 2 h ahead", fill_2h >= 0.6, f"{100 * fill_2h:.1f}%")
    median = learned["median_minutes_to_fill"]
    check(
        "median time to fill ≤ 15 min",
        median is not None and median <= 15,
        f"{median} min",
    )
    most = learned["max_messages_per_patient_week"]
    check("no patient gets more than 3 offers a week", most <= 3, f"at most {most}")
    for baseline in BASELINES:
        other = mean.figures.get(baseline)
        if other is None:
            continue
        fills = (learned["fill_rate"] or 0) > (other["fill_rate"] or 0)
        fewer = (learned["offers_per_fill"] or 1e9) < (other["offers_per_fill"] or 1e9)
        check(
            f"beats {baseline} on fill rate with fewer offers per fill",
            fills and fewer,
            f"fill {100 * (learned['fill_rate'] or 0):.1f}% vs {100 * (other['fill_rate'] or 0):.1f}%,"
            f" offers/fill {learned['offers_per_fill']} vs {other['offers_per_fill']}",
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--policies", default=",".join(POLICIES))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    policies = tuple(args.policies.split(","))
    live = _live_url()
    app = create_app({"SQLALCHEMY_DATABASE_URI": live, "REDIS_URL": ""})
    for name in ("portal", "jobs", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    results = []
    began = time.monotonic()
    with app.app_context():
        for seed in seeds:
            started = time.monotonic()
            result = run_simulation(live, days=args.days, seed=seed, policies=policies)
            results.append(result)
            print(f"seed {seed}: {args.days} days in {time.monotonic() - started:.0f} s")
            print(format_table(result))
            print(flush=True)
    mean = _mean(results)
    print(f"mean over seeds {','.join(map(str, seeds))}")
    print(format_table(mean))
    print()
    for line in _goals(mean):
        print(line)
    print(
        f"\ntotal {time.monotonic() - began:.0f} s for {len(seeds)} seeds × {len(policies)} policies"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
