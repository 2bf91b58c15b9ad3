"""Run one portal RQ worker (with scheduler) in this process, for the fault tests.

The app config comes as JSON in ``PORTAL_TEST_CONFIG``. Start it with
``python -m tests.fakes.worker_main`` in its own session, so a test can ``kill -9``
the worker and its work-horse together.
"""

from __future__ import annotations

import json
import os

from jobs.worker import run_worker
from portal import create_app


def main() -> None:
    app = create_app(json.loads(os.environ["PORTAL_TEST_CONFIG"]))
    run_worker(app, burst=False, with_scheduler=True)


if __name__ == "__main__":
    main()
