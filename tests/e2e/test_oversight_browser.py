"""The analytics dashboard and the audit log in a real browser at 1366x900, on demo data.

The demo (with its six weeks of history) is loaded, an admin signs in, opens the
dashboard (charts must load as images, with no Content-Security-Policy complaint), a
location filter, the audit log, a filter and an entity's history. Screenshots go to
``/tmp/shots-i12`` (or ``$SHOTS_DIR``) for a person to look at; they are not committed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portal.db import db
from portal.services import demo
from tests.e2e.test_staff_browser import DESKTOP, browser  # noqa: F401 (fixture)

SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots-i12"))

pytestmark = pytest.mark.browser


def _shot(page: object, name: str) -> None:
    """The whole page, and what a 1366x900 screen shows first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(SHOTS / f"{name}-screen.png"))


def test_dashboard_and_audit_log_on_demo_data(live_server: str, browser: object) -> None:  # noqa: F811
    demo.load_demo()
    db.session.commit()
    email, _name, _role, password = demo.DEMO_LOGINS[0]
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    page = context.new_page()
    complaints: list[str] = []
    page.on(
        "console",
        lambda msg: complaints.append(msg.text) if "Content Security Policy" in msg.text else None,
    )

    page.goto(f"{live_server}/staff/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Needs attention").wait_for()

    nav = page.get_by_role("navigation", name="Staff pages")
    nav.get_by_role("link", name="Analytics").click()
    page.get_by_role("heading", name="Analytics", exact=True).wait_for()
    charts = page.locator("img.chart")
    assert charts.count() == 8
    # Every chart decoded as an image (a blocked or broken SVG has no natural width).
    widths = charts.evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth)")
    assert all(w and w > 0 for w in widths), widths
    _shot(page, "01-analytics")

    page.locator("select[name=location]").select_option(index=1)
    page.get_by_role("button", name="Show").click()
    page.get_by_role("heading", name="Analytics", exact=True).wait_for()
    _shot(page, "02-analytics-one-location")

    nav.get_by_role("link", name="Audit log").click()
    page.get_by_role("heading", name="Audit log").wait_for()
    assert page.locator("table.audit-table tbody tr").count() == 50
    _shot(page, "03-audit")

    page.locator("select[name=entity]").select_option("offer")
    page.locator("select[name=action]").select_option("offer.created")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("heading", name="Audit log").wait_for()
    _shot(page, "04-audit-filtered")
    page.get_by_role("button", name="Older").click()
    page.get_by_role("button", name="Newest").wait_for()

    page.locator("table.audit-table tbody tr").first.get_by_role("link", name="history").click()
    page.get_by_role("heading", name="Audit log").wait_for()
    _shot(page, "05-audit-offer-history")

    assert complaints == []
    context.close()
