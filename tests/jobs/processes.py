"""Running a ``portal`` command as its own process against a private Redis, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import TEST_SECRET
from tests.fakes.redis_server import PrivateRedis

ROOT = Path(__file__).resolve().parents[2]
PORTAL = str(Path(sys.executable).parent / "portal")


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` every 0.2 s until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def start_portal(
    command: str, database_url: str, redis: PrivateRedis, log: Path
) -> subprocess.Popen:
    """Start ``portal <command>`` on the test database and ``redis``, output to ``log``."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "SECRET_KEY": TEST_SECRET,
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [PORTAL, command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not ended after 15 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
