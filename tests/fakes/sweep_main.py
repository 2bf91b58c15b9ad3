"""Run one no-show sweep in this process and hang inside a batch, to be killed there.

``PORTAL_TEST_CONFIG`` holds the app config as JSON; ``SWEEP_BATCH`` the batch size;
``SWEEP_HANG_AT`` the number of no-shows handled before it prints ``hanging`` and
sleeps (inside the open transaction) until the test sends ``kill -9``.
"""

from __future__ import annotations

import json
import os
import sys
import time

from portal import create_app
from portal.services import noshow


def main() -> None:
    app = create_app(json.loads(os.environ["PORTAL_TEST_CONFIG"]))
    noshow.BATCH = int(os.environ["SWEEP_BATCH"])
    noshow.mark_due.__kwdefaults__["limit"] = noshow.BATCH
    hang_at = int(os.environ["SWEEP_HANG_AT"])
    handled = 0
    real_handle = noshow._handle

    def handle(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal handled
        outcome = real_handle(*args, **kwargs)
        handled += 1
        if handled == hang_at:
            print("hanging", flush=True)
            time.sleep(120)
        return outcome

    noshow._handle = handle
    from jobs.noshow import sweep_no_shows

    with app.app_context():
        print(json.dumps(sweep_no_shows()), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
