"""Schemathesis, run from the published OpenAPI document against a real server.

The command line tool (``st run``) runs every phase (examples, coverage, fuzzing,
stateful) and every check against the app served over HTTP, with a real API token and
real rows (ids 1 and 2 exist, so boundary values and the stateful links reach real
objects). Bounded by ``MAX_EXAMPLES`` per operation and a fixed seed; set
``FUZZ_SEED`` (and ``FUZZ_MAX_EXAMPLES``) to explore more of the input space.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from portal.db import db, now_utc
from portal.models.enums import AppointmentStatus, SlotStatus
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 25
SEED = 20260301


def _seed_rows() -> None:
    """Two of everything the API refers to by id, one slot open and one booked."""
    start = (now_utc() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    for n in range(2):
        location = f.location()
        practitioner = f.practitioner(location=location)
        service = f.service()
        patient = f.patient(home_location_id=location.id)
        f.slot(practitioner=practitioner, service=service, start_at=start)
        booked = f.slot(
            practitioner=practitioner,
            service=service,
            start_at=start + timedelta(hours=2 + n),
            status=SlotStatus.BOOKED,
        )
        f.appointment(slot=booked, patient=patient, status=AppointmentStatus.BOOKED)
    db.session.commit()


def test_schemathesis_finds_nothing(live_server: str, token: str, tmp_path: Path) -> None:
    _seed_rows()
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{live_server}/api/v1/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        os.environ.get("FUZZ_MAX_EXAMPLES", str(MAX_EXAMPLES)),
        "--seed",
        os.environ.get("FUZZ_SEED", str(SEED)),
    ]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    print(run.stdout)  # the summary, shown with -s or -rP
    assert run.returncode == 0, run.stdout + run.stderr
