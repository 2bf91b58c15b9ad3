"""Data for the patient-page tests: a New York clinic, a slot, two waitlisted patients."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

import pytest
from flask.testing import FlaskClient

from portal.db import db, now_utc
from portal.models import Offer, Patient, Slot
from portal.services.links import LinkPurpose, make_token
from portal.services.timezones import to_local, zone
from tests import factories as f
from tests.conftest import csrf_token_from


@dataclass
class Scene:
    slot: Slot
    same_practitioner_alt: Slot
    other_practitioner_alt: Slot
    patient_a: Patient
    patient_b: Patient
    offer_a: Offer
    offer_b: Offer


def tomorrow_at(hour: int, tz: str = "America/New_York") -> datetime:
    """Tomorrow (in ``tz``) at ``hour``:00 local, as an aware instant."""
    day = to_local(now_utc(), tz).date() + timedelta(days=1)
    return datetime.combine(day, time(hour), tzinfo=zone(tz))


def offer_token(offer: Offer) -> str:
    return make_token(
        LinkPurpose.OFFER, offer.id, offer.patient_id, offer.slot.start_at + timedelta(days=2)
    )


def post_form(client: FlaskClient, page_url: str, action: str) -> object:
    """Open ``page_url`` (for its CSRF token) and submit a form to ``action``."""
    page = client.get(page_url)
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(action, data={"csrf_token": token})


def build_scene() -> Scene:
    """A 10:00 ET slot tomorrow offered to two patients in LA, and two alternatives."""
    clinic = f.location(
        name="Fifth Avenue",
        timezone="America/New_York",
        phone="+12125550100",
        address="500 Fifth Ave, New York",
    )
    lee = f.practitioner(location=clinic, name="Dr. Maya Lee")
    kim = f.practitioner(location=clinic, name="Dr. Jon Kim")
    botox = f.service(name="Botox", duration_minutes=30, price_cents=40000)
    slot = f.slot(start_at=tomorrow_at(10), practitioner=lee, service=botox)
    # Lee three hours later scores 100+30-15+25 = 140; Kim one hour later 100-5+25 = 120.
    same = f.slot(start_at=tomorrow_at(13), practitioner=lee, service=botox)
    other = f.slot(start_at=tomorrow_at(11), practitioner=kim, service=botox)
    a = f.patient(name="Ana Alvarez", timezone="America/Los_Angeles")
    b = f.patient(name="Ben Brooks", timezone="America/Los_Angeles")
    offer_a = f.offer(slot=slot, entry=f.waitlist_entry(patient=a, slot=slot))
    offer_b = f.offer(slot=slot, entry=f.waitlist_entry(patient=b, slot=slot))
    db.session.commit()
    return Scene(slot, same, other, a, b, offer_a, offer_b)


@pytest.fixture
def scene(app: object) -> Scene:
    return build_scene()
