"""Admin pages: role checks, the generated settings form, policies, catalogue, accounts."""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import fields

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.db import db
from portal.models import (
    AuditEvent,
    CancellationPolicy,
    Location,
    OfferPolicy,
    Practitioner,
    Service,
    StaffUser,
)
from portal.models.enums import OfferMode, StaffRole
from portal.services.settings import Settings, forget_cached_settings, settings
from tests import factories as f
from tests.staff.conftest import PASSWORD, form_token, post_login

ADMIN_PAGES = [
    ("GET", "/staff/settings"),
    ("POST", "/staff/settings"),
    ("GET", "/staff/settings/policies"),
    ("POST", "/staff/settings/policies/offer/injectables"),
    ("GET", "/staff/settings/catalogue"),
    ("GET", "/staff/settings/locations/new"),
    ("POST", "/staff/settings/practitioners/new"),
    ("GET", "/staff/settings/services/new"),
    ("GET", "/staff/settings/staff"),
    ("POST", "/staff/settings/staff/invite"),
    ("POST", "/staff/settings/staff/1/active"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_PAGES)
def test_staff_who_are_not_admins_get_403(signed_in: FlaskClient, method: str, path: str) -> None:
    token = form_token(signed_in)
    response = signed_in.open(
        path, method=method, data={"csrf_token": token} if method == "POST" else None
    )
    assert response.status_code == 403


def test_admin_pages_need_a_session(client: FlaskClient) -> None:
    assert client.get("/staff/settings").status_code == 302


def test_only_admins_see_settings_in_the_navigation(signed_in: FlaskClient, app: Flask) -> None:
    assert 'href="/staff/settings"' not in signed_in.get("/staff/").text
    admin = f.staff_user(password=PASSWORD, role=StaffRole.ADMIN)
    db.session.commit()
    other = app.test_client()
    post_login(other, admin.email, PASSWORD)
    assert 'href="/staff/settings"' in other.get("/staff/").text


def test_every_tunable_is_on_the_settings_form(signed_in_admin: FlaskClient) -> None:
    from portal.services.settings_admin import setting_fields

    html = signed_in_admin.get("/staff/settings").text
    specs = {spec.name: spec for spec in setting_fields(Settings())}
    assert set(specs) == {field.name for field in fields(Settings)}  # every field, by itself
    for spec in specs.values():
        names = (
            [f"s-{spec.name}-{key}" for key in spec.keys]
            if spec.kind == "map"
            else [f"s-{spec.name}"]
        )
        for name in names:
            assert f'name="{name}"' in html, name
    assert "An individual patient receives at most this many offers per local day." in html
    assert "SPEC" not in html


def _settings_form(html: str) -> dict[str, str]:
    """The settings form as a browser would submit it: inputs, selects and text areas."""
    form = dict(re.findall(r'<input [^>]*name="(s-[^"]+)"[^>]*value="([^"]*)"', html))
    for name, options in re.findall(r'<select name="(s-[^"]+)"[^>]*>(.*?)</select>', html, re.S):
        form[name] = re.search(r'<option value="([^"]*)" selected', options).group(1)
    for name, text in re.findall(r'<textarea name="(s-[^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        form[name] = html_lib.unescape(text)
    return form


def test_a_change_is_saved_and_audited_with_before_and_after(signed_in_admin: FlaskClient) -> None:
    page = signed_in_admin.get("/staff/settings").text
    form = _settings_form(page) | {"csrf_token": form_token(signed_in_admin, "/staff/settings")}
    assert form["s-deposit_cents"] == "50.00"  # amounts in cents are typed in dollars
    form |= {"s-daily_offer_cap": "5", "s-quiet_hours-start": "20:30", "s-deposit_cents": "75"}
    response = signed_in_admin.post("/staff/settings", data=form, follow_redirects=True)
    assert "Saved: daily offer cap, deposit, quiet hours." in response.text
    forget_cached_settings()
    assert settings().deposit_cents == 7500
    assert settings().daily_offer_cap == 5 and settings().quiet_hours == {
        "start": "20:30",
        "end": "08:00",
    }
    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "setting.changed")
    ).all()
    assert {
        (e.before["key"], e.before["value"] if e.before["key"] == "daily_offer_cap" else None)
        for e in events
    } == {
        ("daily_offer_cap", 3),
        ("deposit_cents", None),
        ("quiet_hours", None),
    }
    assert {e.after["key"]: e.after["value"] for e in events}["daily_offer_cap"] == 5


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("s-daily_offer_cap", "three", "Enter a whole number."),
        ("s-daily_offer_cap", "-1", "Enter a number from 0"),
        ("s-quiet_hours-end", "25:00", "Enter a time as HH:MM"),
        (
            "s-quiet_hours_escalate",
            "offer, carrier_pigeon",
            "Unknown message kinds: carrier_pigeon.",
        ),
        ("s-receipt_timeout_minutes-sms", "inf", "Enter a number from 0"),
    ],
)
def test_bad_values_are_refused_beside_the_field_and_nothing_is_saved(
    signed_in_admin: FlaskClient, field: str, value: str, message: str
) -> None:
    page = signed_in_admin.get("/staff/settings").text
    form = _settings_form(page) | {"csrf_token": form_token(signed_in_admin, "/staff/settings")}
    form |= (
        {"s-daily_offer_cap": "4", field: value} if field != "s-daily_offer_cap" else {field: value}
    )
    response = signed_in_admin.post("/staff/settings", data=form)
    assert response.status_code == 422 and message in response.text
    assert f'value="{value}"' in response.text  # what was typed stays in the field
    forget_cached_settings()
    assert settings().daily_offer_cap == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 1  # the login


def test_policies_are_edited_per_category_and_audited(signed_in_admin: FlaskClient) -> None:
    f.service(category="laser")
    db.session.commit()
    page = signed_in_admin.get("/staff/settings/policies").text
    assert "Laser" in page and 'name="wave_size"' in page and 'name="late_fee_kind"' in page
    token = form_token(signed_in_admin, "/staff/settings/policies")
    offer = {
        "csrf_token": token,
        "mode": "sequential",
        "wave_size": "1",
        "window_minutes": "20",
        "near_hours": "3",
        "near_window_minutes": "8",
        "cutoff_minutes": "45",
    }
    assert (
        signed_in_admin.post("/staff/settings/policies/offer/laser", data=offer).status_code == 303
    )
    row = db.session.scalar(sa.select(OfferPolicy).where(OfferPolicy.category == "laser"))
    assert (row.mode, row.window_minutes, row.cutoff_minutes) == (OfferMode.SEQUENTIAL, 20, 45)
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "offer_policy.changed")
    )
    assert event.before is None and event.after["mode"] == "sequential"

    cancel = {
        "csrf_token": token,
        "grace_minutes": "15",
        "grace_free": "1",
        "late_fee_kind": "percent",
        "late_fee_value": "50",
        "notice_hours": "4",
        "full_charge_hours": "24",
    }
    refused = signed_in_admin.post("/staff/settings/policies/cancellation/laser", data=cancel)
    assert refused.status_code == 422
    assert "The full-charge hours must not be more than the notice hours." in refused.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CancellationPolicy)) == 0
    bad = signed_in_admin.post(
        "/staff/settings/policies/offer/laser", data=offer | {"mode": "lottery"}
    )
    assert (
        bad.status_code == 422
        and "Choose one of: sequential, waves, broadcast, learned." in bad.text
    )
    assert (
        signed_in_admin.post("/staff/settings/policies/offer/Not-A-Slug", data=offer).status_code
        == 404
    )


def test_catalogue_add_location_practitioner_and_service(signed_in_admin: FlaskClient) -> None:
    token = form_token(signed_in_admin, "/staff/settings/catalogue")
    response = signed_in_admin.post(
        "/staff/settings/locations/new",
        data={
            "csrf_token": token,
            "name": "Santa Monica",
            "timezone": "America/Los_Angeles",
            "phone": "(310) 555-0100",
            "address": "1 Ocean Ave",
            "w0_0_start": "09:00",
            "w0_0_end": "18:00",
        },
    )
    assert response.status_code == 303
    location = db.session.scalar(sa.select(Location))
    assert (location.phone, location.opening_hours) == (
        "+13105550100",
        [{"weekday": 0, "start": "09:00", "end": "18:00"}],
    )
    signed_in_admin.post(
        "/staff/settings/services/new",
        data={
            "csrf_token": token,
            "name": "Botox",
            "category": "injectables",
            "duration_minutes": "30",
            "min_fill_minutes": "15",
            "price": "$1,250.5",
            "active": "1",
        },
    )
    service = db.session.scalar(sa.select(Service))
    assert (service.price_cents, service.duration_minutes) == (125050, 30)
    signed_in_admin.post(
        "/staff/settings/practitioners/new",
        data={
            "csrf_token": token,
            "name": "Dr. Rivera",
            "location_id": location.id,
            "service_ids": [service.id],
            "active": "1",
        },
    )
    practitioner = db.session.scalar(sa.select(Practitioner))
    assert [s.id for s in practitioner.services] == [service.id]
    listing = signed_in_admin.get("/staff/settings/catalogue").text
    assert "Dr. Rivera" in listing and "$1,250.50" in listing and "Santa Monica" in listing
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"location.created", "service.created", "practitioner.created"} <= actions


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        (
            "/staff/settings/locations/new",
            {"name": "X", "timezone": "Nowhere/City"},
            "Choose a time zone",
        ),
        (
            "/staff/settings/locations/new",
            {"name": "X", "timezone": "UTC", "w1_0_start": "10:00"},
            "Tuesday: give both",
        ),
        (
            "/staff/settings/services/new",
            {
                "name": "X",
                "category": "Bad Category",
                "duration_minutes": "30",
                "min_fill_minutes": "10",
                "price": "5",
            },
            "A category is a short lower-case word",
        ),
        (
            "/staff/settings/services/new",
            {
                "name": "X",
                "category": "laser",
                "duration_minutes": "thirty",
                "min_fill_minutes": "10",
                "price": "5",
            },
            "Durations are whole minutes.",
        ),
        (
            "/staff/settings/services/new",
            {
                "name": "X",
                "category": "laser",
                "duration_minutes": "30",
                "min_fill_minutes": "10",
                "price": "5.999",
            },
            "Enter an amount in dollars",
        ),
        ("/staff/settings/practitioners/new", {"name": "X"}, "Choose where they work."),
    ],
)
def test_bad_catalogue_input_gets_a_message(
    signed_in_admin: FlaskClient, path: str, data: dict[str, str], message: str
) -> None:
    token = form_token(signed_in_admin, "/staff/settings/catalogue")
    response = signed_in_admin.post(path, data={"csrf_token": token} | data)
    assert response.status_code == 422 and message in response.text


def test_invite_link_sets_a_password_once_and_the_new_person_signs_in(
    signed_in_admin: FlaskClient, app: Flask
) -> None:
    token = form_token(signed_in_admin, "/staff/settings/staff")
    page = signed_in_admin.post(
        "/staff/settings/staff/invite",
        data={"csrf_token": token, "name": "Nia New", "email": "Nia@Clinic.test", "role": "staff"},
    ).text
    link = re.search(r'id="invite-link" value="([^"]+)"', page).group(1)
    path = link.split("//", 1)[1].split("/", 1)[1]
    newcomer = app.test_client()
    form = newcomer.get(f"/{path}").text
    assert "Choose a password" in form and "nia@clinic.test" in form
    assert (
        post_login(newcomer, "nia@clinic.test", "anything at all 123").status_code == 200
    )  # no password yet
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    mismatch = newcomer.post(
        f"/{path}",
        data={"csrf_token": csrf, "password": "long enough password", "confirm": "other"},
    )
    assert mismatch.status_code == 422 and "not the same" in mismatch.text
    short = newcomer.post(
        f"/{path}", data={"csrf_token": csrf, "password": "short", "confirm": "short"}
    )
    assert short.status_code == 422 and "at least 12 characters" in short.text
    done = newcomer.post(
        f"/{path}",
        data={
            "csrf_token": csrf,
            "password": "long enough password",
            "confirm": "long enough password",
        },
    )
    assert done.status_code == 303
    assert newcomer.get(f"/{path}").status_code == 410  # the link worked once
    assert post_login(newcomer, "nia@clinic.test", "long enough password").status_code == 302


def test_deactivating_ends_the_persons_sessions(signed_in_admin: FlaskClient, app: Flask) -> None:
    worker = f.staff_user(password=PASSWORD, name="Wes Worker")
    db.session.commit()
    theirs = app.test_client()
    post_login(theirs, worker.email, PASSWORD)
    assert theirs.get("/staff/").status_code == 200
    token = form_token(signed_in_admin, "/staff/settings/staff")
    response = signed_in_admin.post(
        f"/staff/settings/staff/{worker.id}/active",
        data={"csrf_token": token, "active": "0"},
        follow_redirects=True,
    )
    assert "Wes Worker is deactivated: their sessions have ended." in response.text
    assert theirs.get("/staff/").status_code == 302


def test_roles_change_but_never_leave_the_clinic_without_an_admin(
    signed_in_admin: FlaskClient, admin: StaffUser
) -> None:
    worker = f.staff_user(name="Wes Worker")
    db.session.commit()
    token = form_token(signed_in_admin, "/staff/settings/staff")
    signed_in_admin.post(
        f"/staff/settings/staff/{worker.id}/role", data={"csrf_token": token, "role": "admin"}
    )
    db.session.expire_all()
    assert db.session.get(StaffUser, worker.id).role == StaffRole.ADMIN
    signed_in_admin.post(
        f"/staff/settings/staff/{worker.id}/role", data={"csrf_token": token, "role": "staff"}
    )
    last = signed_in_admin.post(
        f"/staff/settings/staff/{admin.id}/role",
        data={"csrf_token": token, "role": "staff"},
        follow_redirects=True,
    )
    assert "This is the only admin" in last.text
    own = signed_in_admin.post(
        f"/staff/settings/staff/{admin.id}/active",
        data={"csrf_token": token, "active": "0"},
        follow_redirects=True,
    )
    assert "You cannot deactivate your own account." in own.text


def test_invite_refuses_a_taken_email_on_the_form(
    signed_in_admin: FlaskClient, admin: StaffUser
) -> None:
    token = form_token(signed_in_admin, "/staff/settings/staff")
    response = signed_in_admin.post(
        "/staff/settings/staff/invite",
        data={"csrf_token": token, "name": "Dup", "email": admin.email, "role": "staff"},
    )
    assert response.status_code == 422 and "already exists" in response.text


def test_admin_forms_refuse_posts_without_csrf(signed_in_admin: FlaskClient) -> None:
    assert (
        signed_in_admin.post("/staff/settings", data={"s-daily_offer_cap": "9"}).status_code == 400
    )


def test_richer_settings_are_edited_as_checked_json(signed_in_admin: FlaskClient) -> None:
    page = signed_in_admin.get("/staff/settings").text
    form = _settings_form(page) | {"csrf_token": form_token(signed_in_admin, "/staff/settings")}
    assert "s-reminder_cadence_hours" in form and form["s-reschedule_free_with_notice"] == "yes"
    bad = form | {"s-quiet_hours_overrides": '{"FL": {"start": "8pm"}}'}
    refused = signed_in_admin.post("/staff/settings", data=bad)
    assert refused.status_code == 422 and "FL: give start and end as HH:MM." in refused.text
    shape = form | {"s-reminder_cadence_hours": '{"facial": "soon"}'}
    refused = signed_in_admin.post("/staff/settings", data=shape)
    assert refused.status_code == 422 and "Enter JSON of the right shape" in refused.text
    good = form | {
        "s-quiet_hours_overrides": '{"FL": {"start": "20:00", "end": "08:00"}}',
        "s-reschedule_free_with_notice": "no",
    }
    assert signed_in_admin.post("/staff/settings", data=good).status_code == 303
    forget_cached_settings()
    assert settings().quiet_hours_overrides == {"FL": {"start": "20:00", "end": "08:00"}}
    assert settings().reschedule_free_with_notice is False
