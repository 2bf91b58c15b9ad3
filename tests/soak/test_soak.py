"""The soak, short: 75 s of mixed workload under every fault, then the set-style check.

It runs ``bench/soak.py`` as its own process (its own PostgreSQL cluster, Redis,
gunicorn, two workers, cron and provider fakes; nothing shared with the rest of the
suite) and passes when the checker finds no violation. The full run is
``.venv/bin/python bench/soak.py`` (10 minutes); see docs/operations.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 75


@pytest.mark.slow
def test_short_soak_keeps_every_promise(capsys: pytest.CaptureFixture[str]) -> None:
    # Its own temporary directory (kept, with every log, when a check fails): pytest's
    # is private to root, and the soak's PostgreSQL runs as the postgres user.
    done = subprocess.run(
        [sys.executable, "bench/soak.py", "--seconds", str(SECONDS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 420,
    )
    report = [line for line in done.stdout.splitlines() if line.strip()]
    tally = report[-1] if report else "(no tally)"
    with capsys.disabled():
        print(f"\n[soak {SECONDS}s] {tally}")
    assert done.returncode == 0, "\n".join(report[-12:]) + "\n" + done.stderr[-3000:]
    assert tally.startswith("faults=") and " lost=0 " in tally and " double_booked=0 " in tally
