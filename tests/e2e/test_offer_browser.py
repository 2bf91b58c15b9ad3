"""Two patients race for one slot in a real browser on a phone-sized screen.

Runs the app in a real server thread and drives Debian's Chromium with Playwright.
Screenshots land in tests/e2e/screenshots/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from portal.db import db
from portal.models import Appointment
from portal.models.enums import AppointmentSource
from tests.patient.conftest import build_scene, offer_token

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
SHOTS = Path(__file__).parent / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture
def browser() -> Iterator[object]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium: make browser-deps)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _phone(browser: object) -> object:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(15_000)
    return context.new_page()


def _shot(page: object, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_two_patients_race_for_one_slot(live_server: str, browser: object) -> None:
    scene = build_scene()
    link_a = f"{live_server}/o/{offer_token(scene.offer_a)}"
    link_b = f"{live_server}/o/{offer_token(scene.offer_b)}"

    ben = _phone(browser)  # B opens the offer first, while it is still open...
    ben.goto(link_b)
    assert ben.get_by_role("heading", name="An earlier time is free").is_visible()

    ana = _phone(browser)  # ...but A is quicker to tap.
    ana.goto(link_a)
    assert ana.locator(".slot-practice-time").inner_text().endswith("at the clinic.")
    _shot(ana, "01-offer")
    ana.get_by_role("button", name="Book this time").click()
    ana.wait_for_url(f"{live_server}/a/**")
    assert ana.get_by_role("heading", name="You're booked!").is_visible()
    _shot(ana, "02-appointment")

    ben.get_by_role("button", name="Book this time").click()
    ben.get_by_role("heading", name="Sorry, that time was just taken").wait_for()
    cards = ben.locator(".slot-card")
    assert cards.count() == 2
    heading = cards.first.locator(".slot-heading").text_content() or ""
    assert heading.strip() == "Same practitioner · Same day"
    _shot(ben, "03-taken")

    cards.first.get_by_role("button", name="Book this time").click()
    ben.wait_for_url(f"{live_server}/a/**")
    assert ben.get_by_role("heading", name="You're booked!").is_visible()
    _shot(ben, "04-alternative-booked")

    db.session.expire_all()
    booked = {
        a.patient_id: (a.slot_id, a.source) for a in db.session.scalars(sa.select(Appointment))
    }
    assert booked == {
        scene.patient_a.id: (scene.slot.id, AppointmentSource.WAITLIST),
        scene.patient_b.id: (scene.same_practitioner_alt.id, AppointmentSource.ALTERNATIVE),
    }


def test_hold_and_closed_pages_on_a_phone(live_server: str, browser: object) -> None:
    scene = build_scene()
    scene.patient_a.deposit_required = True
    db.session.commit()
    link_a = f"{live_server}/o/{offer_token(scene.offer_a)}"
    link_b = f"{live_server}/o/{offer_token(scene.offer_b)}"

    ana = _phone(browser)
    ana.goto(link_a)
    ana.get_by_role("button", name="Book this time").click()
    ana.get_by_role("heading", name="We're holding this time for you").wait_for()
    assert "$50.00" in ana.content()
    ana.wait_for_timeout(1100)  # let app.js start the countdown
    _shot(ana, "05-held")

    ben = _phone(browser)
    ben.goto(link_b)
    assert "completing a booking for this slot" in ben.content()
    _shot(ben, "06-offer-while-held")
    ben.once("dialog", lambda dialog: dialog.accept())
    ben.get_by_role("button", name="No thanks").click()
    ben.get_by_role("heading", name="You passed on this time").wait_for()
    _shot(ben, "07-declined")

    ben.goto(f"{live_server}/o/not-a-real-token")
    assert ben.get_by_role("heading", name="This link isn't valid").is_visible()
    _shot(ben, "08-link-error")
