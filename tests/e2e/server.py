"""Run the portal under a real gunicorn (several worker processes) for HTTP tests and benches.

``gunicorn_server(...)`` binds a free port on 127.0.0.1 itself and hands the bound
socket to gunicorn (``--bind fd://N``), so there is no window in which another process
can take the port. Gunicorn runs in its own process group; on exit the master is asked
to stop (SIGTERM, graceful) and, if anything in the group outlives the grace period,
the whole group is killed. Nothing is left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def _bound_socket() -> socket.socket:
    """A TCP socket bound (not yet listening) to a free port on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback http)
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` of a server log (for failure messages)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn gracefully, then kill whatever of its process group remains."""
    pgid = proc.pid  # start_new_session=True: the master leads its own group
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)
    if proc.poll() is None or _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def gunicorn_server(
    database_url: str,
    redis_url: str,
    secret_key: str,
    *,
    workers: int = 4,
    threads: int = 4,
    log_path: Path | None = None,
    extra_env: dict[str, str] | None = None,
    worker_class: str = "gthread",
) -> Iterator[str]:
    """Serve ``wsgi:app`` with gunicorn on 127.0.0.1; yield its base URL, stop it on exit.

    The server reads the given database and Redis, signs links with ``secret_key``
    (share it with whoever mints tokens), and runs with rate limits off. Gunicorn's
    and the app's logs go to ``log_path`` (a temporary file when not given).
    """
    with contextlib.ExitStack() as stack:
        if log_path is None:
            log_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "gunicorn.log"
        sock = stack.enter_context(_bound_socket())
        port = sock.getsockname()[1]
        base_url = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "SECRET_KEY": secret_key,
                "PUBLIC_BASE_URL": base_url,
                "RATELIMIT_ENABLED": "false",
                "PYTHONUNBUFFERED": "1",
                "WEB_THREADS": str(threads),  # the database pool matches the threads
            }
        )
        env.update(extra_env or {})
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"fd://{sock.fileno()}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--keep-alive",
            "30",
            "--no-control-socket",
            "--log-level",
            "warning",
            "--error-logfile",
            "-",
            "wsgi:app",
        ]
        log_file = stack.enter_context(log_path.open("ab"))
        proc = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            pass_fds=(sock.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,  # gunicorn's errors and the app's logs (tracebacks)
            start_new_session=True,
        )
        stack.callback(_stop, proc)
        sock.close()  # gunicorn owns the listening socket now
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(f"{base_url}/livez"):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {proc.returncode} while starting:\n{log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not answer /livez within {START_TIMEOUT:.0f} s:\n"
                    f"{log_tail(log_path)}"
                )
            time.sleep(0.1)
        yield base_url
