"""A front-desk shift in a real browser at 1366x900: from signing in to the settings.

Log in → home → add a patient → put them on the waitlist → release a slot → see them
offered → every channel fails (marked on the outbox page) → outreach queue → claim →
record the outcome → flags → resolve → closures → settings (admin). The jobs a worker
would run (filling, sending) run in this process between steps. Screenshots go to
``/tmp/shots-i11`` (or ``$SHOTS_DIR``) for a person to look at; they are not committed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from portal.db import db
from portal.models import Appointment, Offer, OutreachTask, Patient, PatientFlag
from portal.models.enums import FlagKind, OfferStatus, StaffRole
from portal.queue import QUEUES, get_queue, redis_connection
from portal.services.settings import set_setting
from tests import factories as f
from tests.e2e.test_offer_browser import CHROMIUM, CHROMIUM_ARGS
from tests.patient.conftest import tomorrow_at

DESKTOP = {"width": 1366, "height": 900}
SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots-i11"))
PASSWORD = "correct horse battery"

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


def run_jobs() -> None:
    """Run every queued job now, as the RQ worker would (filling, sending)."""
    queues = [get_queue(name) for name in QUEUES]
    SimpleWorker(queues, connection=redis_connection()).work(burst=True)
    db.session.expire_all()


def _shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _clinic() -> dict[str, object]:
    """A New York clinic with a booked Botox slot tomorrow at 10:00 and two open ones."""
    set_setting("quiet_hours", {"start": "00:00", "end": "00:00"})  # texts go out at any hour
    hours = [{"weekday": d, "start": "09:00", "end": "18:00"} for d in range(6)]
    clinic = f.location(name="Fifth Avenue", timezone="America/New_York", opening_hours=hours)
    lee = f.practitioner(location=clinic, name="Dr. Maya Lee")
    kim = f.practitioner(location=clinic, name="Dr. Jon Kim")
    botox = f.service(name="Botox", category="injectables", duration_minutes=30, price_cents=40000)
    f.service(name="Hydrafacial", category="facial", duration_minutes=60, price_cents=22500)
    booked = f.slot(start_at=tomorrow_at(10), practitioner=lee, service=botox)
    f.appointment(slot=booked, patient=f.patient(name="Rosa Booked"))
    f.slot(start_at=tomorrow_at(15), practitioner=kim, service=botox)
    admin = f.staff_user(password=PASSWORD, role=StaffRole.ADMIN, name="Dana Front Desk")
    db.session.commit()
    return {"clinic": clinic, "slot": booked, "admin": admin}


def test_a_front_desk_shift(live_server: str, browser: object) -> None:
    scene = _clinic()
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    # Sign in → home.
    page.goto(f"{live_server}/staff/login")
    page.get_by_label("Email").fill(scene["admin"].email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Needs attention").wait_for()
    _shot(page, "01-home")

    # Add a patient.
    page.get_by_role("navigation", name="Staff pages").get_by_role("link", name="Patients").click()
    page.get_by_role("button", name="New patient").click()
    page.get_by_label("Full name").fill("Lena Park")
    page.get_by_label("Mobile phone").fill("(212) 555-0147")
    _shot(page, "02-new-patient")
    page.get_by_role("button", name="Add patient").click()
    page.get_by_text("Lena Park was added").wait_for()
    _shot(page, "03-patient")
    lena = db.session.scalar(sa.select(Patient).where(Patient.name == "Lena Park"))
    assert lena.phone_e164 == "+12125550147" and lena.timezone == "America/New_York"

    # Put her on the waitlist.
    page.get_by_role("link", name="Add to the waitlist").first.click()
    page.get_by_label("Service").select_option(label="Botox")
    page.get_by_label("Location").select_option(label="Fifth Avenue")
    page.get_by_label("Can come at short notice").check()
    _shot(page, "04-waitlist-form")
    page.get_by_role("button", name="Add to the waitlist").click()
    page.get_by_text("Lena Park is on the waitlist for Botox").wait_for()
    page.get_by_role("navigation", name="Staff pages").get_by_role("link", name="Waitlist").click()
    page.get_by_role("heading", name="Waitlist", exact=True).wait_for()
    _shot(page, "05-waitlist")

    # Release the booked slot from the day view; the waitlist is asked.
    slot = scene["slot"]
    day = (slot.start_at - timedelta(hours=5)).date().isoformat()
    page.goto(f"{live_server}/staff/day?location={scene['clinic'].id}&date={day}")
    page.locator(f"#slot-{slot.id}").get_by_role("link", name="Details").click()
    page.get_by_role("button", name="Release slot").click()
    page.get_by_text("Slot released").wait_for()
    run_jobs()
    page.goto(f"{live_server}/staff/slots/{slot.id}")
    offers = page.locator("table").filter(has_text="Lena Park")
    assert offers.count() == 1 and "Pending" in offers.inner_text()
    _shot(page, "06-offered")
    page.get_by_role("link", name="Who could take it").click()
    page.get_by_role("heading", name="Who could take it?").wait_for()
    _shot(page, "07-candidates")

    # No channel reaches her: the text fails, the call goes unanswered (outbox page).
    page.goto(f"{live_server}/staff/outbox?to=%2B12125550147")
    page.get_by_role("button", name="Failed").first.click()
    run_jobs()
    page.goto(f"{live_server}/staff/outbox?to=%2B12125550147")
    page.get_by_role("button", name="No answer").first.click()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutreachTask)) == 1

    # The outreach queue: claim, read the script, record that she accepts.
    page.goto(f"{live_server}/staff/")
    _shot(page, "08-home-with-work")
    page.get_by_role("navigation", name="Staff pages").get_by_role("link", name="Outreach").click()
    page.get_by_role("heading", name="Outreach", exact=True).wait_for()
    _shot(page, "09-outreach-queue")
    page.get_by_role("button", name="Claim").click()
    page.get_by_role("heading", name="What to say").wait_for()
    assert "An earlier Botox time has opened up" in page.content()
    _shot(page, "10-call-script")
    page.get_by_label("Reached: accepts the offer").check()
    page.get_by_label("Notes (optional)").fill("Happy to come in tomorrow")
    page.get_by_role("button", name="Save outcome").click()
    page.get_by_text("Lena Park accepted: they are booked").wait_for()
    _shot(page, "11-outcome-recorded")
    booked = db.session.scalar(sa.select(Appointment).where(Appointment.patient_id == lena.id))
    assert booked is not None and booked.slot_id == slot.id
    offer = db.session.scalar(sa.select(Offer).where(Offer.patient_id == lena.id))
    assert offer.status == OfferStatus.ACCEPTED

    # Flags: every channel failing flagged her unreachable; review and resolve it.
    page.get_by_role("navigation", name="Staff pages").get_by_role("link", name="Flags").click()
    page.get_by_role("heading", name="Flags", exact=True).wait_for()
    _shot(page, "12-flags")
    page.get_by_role("button", name="Review").first.click()
    page.get_by_role("heading", name="Notes and history").wait_for()
    page.get_by_label("Add a note").fill(
        "Reached her by phone; the number works, texts were filtered."
    )
    page.get_by_role("button", name="Add note").click()
    page.get_by_text("Note added.").wait_for()
    _shot(page, "13-flag-review")
    page.get_by_label("How was it dealt with?").fill("Number confirmed by phone.")
    page.get_by_role("button", name="Resolve flag").click()
    page.get_by_text("Lena Park's flag is resolved.").wait_for()
    _shot(page, "14-flag-resolved")
    flag = db.session.scalar(sa.select(PatientFlag).where(PatientFlag.kind == FlagKind.UNREACHABLE))
    assert flag.resolved_at is not None

    # Closures: reduced hours the day after tomorrow.
    page.get_by_role("navigation", name="Staff pages").get_by_role("link", name="Closures").click()
    page.get_by_role("heading", name="Add a closure").wait_for()
    later = (slot.start_at + timedelta(days=1)).date().isoformat()
    page.get_by_label("Reduced hours").check()
    page.get_by_label("First day").fill(later)
    page.get_by_label("Closed from").fill("13:00")
    page.get_by_label("Until").fill("17:00")
    page.get_by_label("Reason").fill("Staff training")
    page.get_by_role("button", name="Save closure").click()
    page.get_by_text("Closure saved").wait_for()
    assert "Closed 1 PM–5 PM: Staff training" in page.content()
    _shot(page, "15-closures")

    # Settings (admin): the tunables, policies, catalogue and accounts.
    page.get_by_role("navigation", name="Staff pages").get_by_role("link", name="Settings").click()
    page.get_by_label("Daily offer cap").fill("4")
    _shot(page, "16-settings")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Saved: daily offer cap.").wait_for()
    page.get_by_role("link", name="Offers and cancellations").click()
    _shot(page, "17-policies")
    page.get_by_role("link", name="Locations, practitioners, services").click()
    _shot(page, "18-catalogue")
    page.get_by_role("link", name="Staff accounts").click()
    _shot(page, "19-staff-accounts")
    page.goto(f"{live_server}/staff/patients/{lena.id}")
    _shot(page, "20-patient-after")
    context.close()
