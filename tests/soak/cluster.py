"""The processes a deployment runs — gunicorn, RQ workers, cron — started for real.

Each runs the same command a clinic would (``gunicorn … wsgi:app``, ``portal worker``,
``portal cron``, ``portal sweep-no-shows``) with the environment pointing at the soak's
own PostgreSQL, Redis and provider fakes. Every process leads its own session, so a
``kill -9`` of a worker takes its work-horse too. A supervisor thread plays systemd: a
process that died is started again after a short pause, and each such exit that the
soak did not cause is counted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.notify.test_faults import descendants

ROOT = Path(__file__).resolve().parents[2]
PORTAL = str(Path(sys.executable).parent / "portal")


@dataclass
class Managed:
    """One supervised process: its command, its log, and why it last stopped."""

    name: str
    command: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    killed_on_purpose: bool = False
    keep_running: bool = True
    starts: int = 0
    unplanned_exits: list[int] = field(default_factory=list)  # exit codes


class Cluster:
    """Start, kill and supervise the portal's processes."""

    def __init__(self, env: dict[str, str], logdir: Path, web_port: int) -> None:
        self.env = env
        self.logdir = logdir
        self.web_port = web_port
        self.processes: dict[str, Managed] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    # --- lifecycle ------------------------------------------------------------------

    def add(self, name: str, command: list[str]) -> Managed:
        managed = Managed(name, command, self.logdir / f"{name}.log")
        with self._lock:
            self.processes[name] = managed
        self._start(managed)
        return managed

    def start_all(self) -> None:
        self.add("web", self.gunicorn_command())
        self.add("worker-1", [PORTAL, "worker"])
        self.add("worker-2", [PORTAL, "worker"])
        self.add("cron", [PORTAL, "cron"])
        self._supervisor.start()

    def gunicorn_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.web_port}",
            "--workers",
            "3",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--timeout",
            "30",
            "--graceful-timeout",
            "4",
            "--no-control-socket",
            "--log-level",
            "warning",
            "--error-logfile",
            "-",
            "wsgi:app",
        ]

    def _start(self, managed: Managed) -> None:
        with managed.log.open("ab") as log:
            managed.proc = subprocess.Popen(
                managed.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        managed.starts += 1
        managed.killed_on_purpose = False

    def _supervise(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                managed_list = list(self.processes.values())
            for managed in managed_list:
                proc = managed.proc
                if proc is None or proc.poll() is None or not managed.keep_running:
                    continue
                if not managed.killed_on_purpose:
                    managed.unplanned_exits.append(proc.returncode)
                time.sleep(0.5)  # systemd's RestartSec, shortened
                self._start(managed)

    def stop_all(self) -> None:
        self._stop.set()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=5)
        with self._lock:
            managed_list = list(self.processes.values())
        for managed in managed_list:
            managed.keep_running = False
            self._terminate(managed)

    def _terminate(self, managed: Managed) -> None:
        proc = managed.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def remove(self, name: str) -> None:
        """Stop a process for good (a second cron's end)."""
        with self._lock:
            managed = self.processes.pop(name)
        managed.keep_running = False
        managed.killed_on_purpose = True
        self._terminate(managed)

    # --- faults ---------------------------------------------------------------------

    def kill9(self, name: str) -> bool:
        """``kill -9`` a process and everything below it; the supervisor restarts it."""
        managed = self.processes[name]
        proc = managed.proc
        if proc is None or proc.poll() is not None:
            return False
        managed.killed_on_purpose = True
        for pid in [proc.pid, *descendants(proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        return True

    def kill9_child(self, name: str) -> int | None:
        """``kill -9`` one child of a process (a gunicorn worker, an RQ work-horse)."""
        managed = self.processes[name]
        if managed.proc is None or managed.proc.poll() is not None:
            return None
        children = descendants(managed.proc.pid)
        if not children:
            return None
        victim = children[0]
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
            return victim
        return None

    def has_child(self, name: str) -> bool:
        managed = self.processes[name]
        return bool(managed.proc and managed.proc.poll() is None and descendants(managed.proc.pid))

    def unplanned_exits(self) -> dict[str, list[int]]:
        with self._lock:
            return {m.name: list(m.unplanned_exits) for m in self.processes.values()}

    def run_once(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """Run a one-off ``portal`` command (a sweep) with the cluster's environment."""
        return subprocess.run(
            [PORTAL, *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
