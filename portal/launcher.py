"""``portal run`` (what ``make run`` runs): engines, migrations, demo data, Procfile.

This process owns the embedded PostgreSQL and Redis (unless ``DATABASE_URL`` /
``REDIS_URL`` are set) for as long as it runs, exports their URLs to every child,
and on Ctrl-C / SIGTERM / SIGHUP stops honcho (which stops web, worker and cron)
and then the engines.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from portal import engines

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE = PROJECT_ROOT / "instance"
PROCFILE = PROJECT_ROOT / "Procfile"

_READY_TIMEOUT = 60.0
_STOP_TIMEOUT = 20.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class LaunchError(Exception):
    """A start-up step failed; the message says which and why."""


class _Interrupted(KeyboardInterrupt):
    """A stop signal arrived before the processes were started."""


def _say(message: str) -> None:
    print(f"portal run: {message}", flush=True)


def _fail(message: str) -> None:
    print(f"portal run: error: {message}", file=sys.stderr, flush=True)


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LaunchError(
                    f"port {port} on 127.0.0.1 is already in use (another `make run`?); "
                    "stop it or choose another with PORT=…"
                ) from exc
            raise LaunchError(f"cannot bind 127.0.0.1:{port}: {exc}") from exc


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _child_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)  # the venv's bin: gunicorn, portal
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")]).rstrip(os.pathsep)
    env["PORT"] = str(port)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _portal(args: list[str], env: dict[str, str], *, capture: bool = False) -> str:
    """Run ``portal ARGS`` (as ``python -m portal.cli``); return its stdout if captured."""
    cmd = [sys.executable, "-m", "portal.cli", *args]
    label = "portal " + " ".join(args)
    proc = subprocess.run(
        cmd,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE if capture else None,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise LaunchError(f"`{label}` failed (exit code {proc.returncode})")
    return proc.stdout or ""


def _resolve_engines() -> None:
    """Start/attach the embedded engines unless configured; export their URLs."""
    INSTANCE.mkdir(parents=True, exist_ok=True)
    if os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = engines.normalise_database_url(os.environ["DATABASE_URL"])
        _say("using DATABASE_URL from the environment")
    else:
        try:
            os.environ["DATABASE_URL"] = engines.database_url(INSTANCE)
        except Exception as exc:
            raise LaunchError(f"could not start the embedded PostgreSQL: {exc}") from exc
        _say(f"embedded PostgreSQL running (data in {INSTANCE / 'pgdata'})")
    if os.environ.get("REDIS_URL"):
        _say("using REDIS_URL from the environment")
    else:
        try:
            os.environ["REDIS_URL"] = engines.redis_url(INSTANCE)
        except Exception as exc:
            raise LaunchError(f"could not start the embedded Redis: {exc}") from exc
        _say(f"embedded Redis running ({os.environ['REDIS_URL']})")


def _banner(port: int, login: str) -> None:
    lines = [
        "",
        "=" * 64,
        f"  Waitlist portal: http://127.0.0.1:{port}",
        f"  Staff sign-in:   http://127.0.0.1:{port}/staff/login",
    ]
    creds = [line.strip() for line in login.splitlines() if line.strip()]
    if creds:
        lines.append("  Demo staff login (email / password):")
        lines += [f"    {line}" for line in creds]
    lines += ["  Ctrl-C stops everything.", "=" * 64, ""]
    print("\n".join(lines), flush=True)


def _setup(port: int) -> tuple[dict[str, str], str]:
    """Steps before the Procfile; returns the children's env and the login text."""
    if not PROCFILE.is_file():
        raise LaunchError(f"no Procfile at {PROCFILE}")
    _check_port_free(port)
    _resolve_engines()
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env = _child_env(port)
    _say("migrating the database")
    _portal(["db", "upgrade"], env)
    _portal(["demo", "--if-empty"], env)
    try:
        login = _portal(["demo", "--print-login"], env, capture=True)
    except LaunchError as exc:
        _fail(f"{exc}; no demo login to show")
        login = ""
    return env, login


def _serve(port: int, env: dict[str, str], login: str) -> int:
    """Run honcho with the Procfile until it ends; forward stop signals to it."""
    stop: list[int] = []
    started_procs: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if stop:
            _say("still stopping…")
            return
        stop.append(signum)
        _say("stopping…")
        sig = signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM
        for proc in started_procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    for sig in _STOP_SIGNALS:
        signal.signal(sig, forward)

    cmd = [sys.executable, "-m", "honcho", "start", "-f", str(PROCFILE)]
    cmd += ["-d", str(PROJECT_ROOT), "-p", str(port)]
    # Its own session: only we signal it (once), and a terminal hang-up cannot kill it
    # before it has stopped its children.
    honcho = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, start_new_session=True)
    started_procs.append(honcho)
    if stop:  # a signal arrived while it was being started
        honcho.send_signal(signal.SIGTERM)

    ready = False
    started = time.monotonic()
    stop_started: float | None = None
    while True:
        try:
            rc = honcho.wait(timeout=0.25)
            break
        except subprocess.TimeoutExpired:
            pass
        if stop:
            stop_started = stop_started or time.monotonic()
            if time.monotonic() - stop_started > _STOP_TIMEOUT:
                _fail("honcho did not stop in time; killing it")
                honcho.kill()
        elif not ready:
            if _port_open(port):
                ready = True
                _banner(port, login)
            elif time.monotonic() - started > _READY_TIMEOUT:
                ready = True
                _fail(f"nothing answers on port {port} after {_READY_TIMEOUT:.0f} s")

    if stop:
        return 0
    detail = f" (exit code {rc})" if rc else ""
    _fail(f"a process stopped unexpectedly{detail}, so everything was stopped (see above)")
    return rc if rc and rc > 0 else 1


def run_all(port: int) -> int:
    """Start everything ``make run`` promises and block until stopped.

    Returns the exit code: 0 after a requested stop (Ctrl-C, SIGTERM, SIGHUP) once
    all children and the embedded engines have stopped; non-zero (after printing
    why on stderr) when a step fails or a process dies.
    """

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise _Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in _STOP_SIGNALS}
    code = 0
    try:
        env, login = _setup(port)
        code = _serve(port, env, login)
    except LaunchError as exc:
        _fail(str(exc))
        code = 1
    except _Interrupted:
        _say("interrupted during start-up")
        code = 0
    finally:
        # Ignore further signals while the engines stop (they must not be left half-done).
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        try:
            engines.release_engines()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if code == 0:
        _say("stopped")
    return code
