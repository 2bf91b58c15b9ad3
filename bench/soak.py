"""Soak under injected faults: a whole deployment, a mixed workload, a set-style check.

Usage (from the project root)::

    .venv/bin/python bench/soak.py --seconds 600

Starts its own PostgreSQL cluster and redis-server in a temporary directory (never the
machine's shared ones), gunicorn, two ``portal worker`` processes, ``portal cron`` and
fakes of Twilio, SMTP and Stripe; drives the API, the patient pages and the webhooks
for ``--seconds`` while killing and restarting things on a schedule; lets the system
settle; then checks PostgreSQL and the fakes' logs and prints one tally line. Exits 1
on any violation. See docs/operations.md, "Soak test".
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from tests.soak.run import describe, run_soak  # noqa: E402


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through run_soak's clean-up


def main() -> int:
    # A soak started in the background inherits SIGINT ignored; either signal must still
    # stop every process it started and its PostgreSQL and Redis.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="workload duration")
    parser.add_argument("--settle", type=float, default=None, help="seconds to settle after")
    parser.add_argument("--keep", type=Path, default=None, help="work directory (kept)")
    args = parser.parse_args()
    result = run_soak(args.seconds, settle=args.settle, keep=args.keep)
    print(describe(result), flush=True)
    print(result.line, flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
