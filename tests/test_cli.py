"""``portal --help`` on a fresh checkout: every command, no traceback, no database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = [
    "create-api-token",
    "create-staff",
    "cron",
    "db",
    "deactivate-staff",
    "demo",
    "doctor",
    "outbox",
    "run",
    "set-staff-password",
    "simulate",
    "sweep-no-shows",
    "worker",
]

#: Run the console script's entry point, then report whether it touched an engine or an app.
_PROBE = """
import sys
from portal import cli
calls = []
cli.ensure_engines = lambda: calls.append("engines")
import portal
real_create_app = portal.create_app
portal.create_app = lambda *a, **k: calls.append("app") or real_create_app(*a, **k)
sys.argv = ["portal", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as exc:
    code = exc.code
print("CALLS=" + ",".join(calls), file=sys.stderr)
raise SystemExit(code)
"""


def _portal(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )


def test_help_lists_every_command_without_a_database() -> None:
    result = _portal("--help")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Error" not in result.stderr
    assert result.stderr.strip() == "CALLS="  # neither the engines nor the app were needed
    listed = [
        line.split()[0]
        for line in result.stdout.split("Commands:")[1].splitlines()
        if line.startswith("  ") and line.strip()
    ]
    assert listed == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_explains_itself_without_a_database(command: str) -> None:
    result = _portal(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == "CALLS="
    assert f"portal {command}" in result.stdout


def test_a_command_run_while_the_database_restarts_says_so_and_exits_75() -> None:
    """Found by the soak: ``portal sweep-no-shows`` run while PostgreSQL restarted ended
    in a traceback (exit 1), as if the sweep were broken; it is "try again" (EX_TEMPFAIL)."""
    from tests.fakes.smtp_server import free_port

    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/portal",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "SECRET_KEY": "x" * 40,
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "portal"), "sweep-no-shows"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    assert done.returncode == 75, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "database" in done.stderr and "again" in done.stderr
