"""Template filters, layouts and error pages, on a small app built here.

The app factory is not used on purpose: these pieces must work on their own.
"""

from __future__ import annotations

import enum
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask, abort, render_template_string
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import TooManyRequests
from wtforms import Form, StringField
from wtforms.validators import InputRequired

from portal.services import presentation
from portal.web import errors, ui

TEMPLATES = Path(__file__).resolve().parents[2] / "portal" / "templates"
STATIC = TEMPLATES.parent / "static"


def make_app(**config: object) -> Flask:
    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=str(STATIC))
    app.config.update({"SECRET_KEY": "test-secret", **config})
    ui.init_app(app)
    errors.init_app(app)

    # A dotted endpoint as a staff blueprint would register, without the blueprint.
    app.add_url_rule("/staff/", endpoint="staff.home", view_func=lambda: "home")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("database password is hunter2")

    @app.get("/api/boom")
    def api_boom() -> str:
        raise RuntimeError("database password is hunter2")

    @app.get("/api/only-get")
    def only_get() -> str:
        return "ok"

    @app.get("/offer")
    def offer_gone() -> str:
        abort(410, "That offer was taken by someone else.")

    @app.get("/slow-down")
    def slow_down() -> str:
        raise TooManyRequests(retry_after=30)

    return app


# Named apart from conftest's `app`/`client`, which start the real app and engines.
@pytest.fixture
def tiny_app() -> Flask:
    return make_app(TESTING=False)


@pytest.fixture
def tiny_client(tiny_app: Flask):
    return tiny_app.test_client()


# ---------- filters ----------


@pytest.mark.parametrize(
    ("cents", "expected"),
    [
        (0, "$0.00"),
        (5, "$0.05"),
        (99, "$0.99"),
        (100, "$1.00"),
        (123456, "$1,234.56"),
        (100_000_000, "$1,000,000.00"),
        (-5, "-$0.05"),
        (-123456, "-$1,234.56"),
        (None, "—"),
    ],
)
def test_money_formats_integer_cents(cents: int | None, expected: str) -> None:
    assert presentation.money(cents) == expected


@pytest.mark.parametrize("value", [12.5, "1250", True])
def test_money_refuses_anything_but_integer_cents(value: object) -> None:
    with pytest.raises(TypeError):
        presentation.money(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # US daylight saving starts 2026-03-08 and ends 2026-11-01.
        (datetime(2026, 3, 7, 19, 30, tzinfo=UTC), "America/New_York", "Sat, Mar 7 · 2:30 PM EST"),
        (datetime(2026, 3, 9, 18, 30, tzinfo=UTC), "America/New_York", "Mon, Mar 9 · 2:30 PM EDT"),
        (
            datetime(2026, 7, 1, 21, 30, tzinfo=UTC),
            "America/Los_Angeles",
            "Wed, Jul 1 · 2:30 PM PDT",
        ),
        (
            datetime(2026, 11, 24, 22, 30, tzinfo=UTC),
            "America/Los_Angeles",
            "Tue, Nov 24 · 2:30 PM PST",
        ),
        # The repeated hour on the night clocks go back: same wall time, two zones.
        (
            datetime(2026, 11, 1, 8, 30, tzinfo=UTC),
            "America/Los_Angeles",
            "Sun, Nov 1 · 1:30 AM PDT",
        ),
        (
            datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
            "America/Los_Angeles",
            "Sun, Nov 1 · 1:30 AM PST",
        ),
        # Local date differs from the UTC date.
        (
            datetime(2026, 11, 25, 3, 0, tzinfo=UTC),
            "America/Los_Angeles",
            "Tue, Nov 24 · 7:00 PM PST",
        ),
        (
            datetime(2026, 11, 25, 3, 0, tzinfo=UTC),
            "America/New_York",
            "Tue, Nov 24 · 10:00 PM EST",
        ),
    ],
)
def test_local_time_shows_wall_time_and_zone_across_dst(
    instant: datetime, zone: str, expected: str
) -> None:
    assert presentation.when(instant, zone) == expected


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("no_zone", "Tue, Nov 24 · 2:30 PM"),
        ("time", "2:30 PM PST"),
        ("date", "Tue, Nov 24"),
        ("long", "Tuesday, November 24, 2026 · 2:30 PM PST"),
        ("%H:%M %Z", "14:30 PST"),
    ],
)
def test_local_time_formats(fmt: str, expected: str) -> None:
    instant = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)
    assert presentation.when(instant, "America/Los_Angeles", fmt) == expected


def test_local_time_converts_from_any_aware_zone_and_reads_naive_as_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    aware = datetime(2026, 11, 25, 7, 30, tzinfo=tokyo)
    naive = datetime(2026, 11, 24, 22, 30)
    assert presentation.when(aware, "America/Los_Angeles") == "Tue, Nov 24 · 2:30 PM PST"
    assert presentation.when(naive, "America/Los_Angeles") == "Tue, Nov 24 · 2:30 PM PST"
    assert presentation.when(None, "America/Los_Angeles") == ""


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "EST"),
        (datetime(2026, 6, 15, 12, 0, tzinfo=UTC), "EDT"),
    ],
)
def test_tz_abbrev_follows_daylight_saving(instant: datetime, expected: str) -> None:
    assert presentation.zone_abbrev(instant, "America/New_York") == expected


def test_iso_is_utc_with_z() -> None:
    pacific = datetime(2026, 11, 24, 14, 30, tzinfo=timezone(timedelta(hours=-8)))
    assert presentation.iso(pacific) == "2026-11-24T22:30:00Z"
    assert presentation.iso(None) == ""


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (0, "0 min"),
        (45, "45 min"),
        (60, "1 h"),
        (65, "1 h 5 min"),
        (150, "2 h 30 min"),
        (-5, "-5 min"),
    ],
)
def test_humanize_minutes(minutes: int, expected: str) -> None:
    assert presentation.duration(minutes) == expected


class Status(enum.Enum):
    NO_SHOW = "no_show"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("no_show", "No-show"),
        ("checked_in", "Checked in"),
        ("open", "Open"),
        (Status.NO_SHOW, "No-show"),
    ],
)
def test_status_label(status: str | Status, expected: str) -> None:
    assert ui.status_label(status) == expected


def test_has_endpoint_sees_only_registered_views(tiny_app: Flask) -> None:
    with tiny_app.app_context():
        rendered = render_template_string(
            "{{ has_endpoint('staff.home') }} {{ has_endpoint('staff.outbox') }}"
        )
    assert rendered == "True False"


def test_filters_are_registered_for_templates(tiny_app: Flask) -> None:
    instant = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)
    with tiny_app.app_context():
        rendered = render_template_string(
            "{{ 123456 | money }}|{{ t | local_time('America/Los_Angeles') }}|"
            "{{ t | tz_abbrev('America/Los_Angeles') }}|{{ t | iso }}|{{ 65 | humanize_minutes }}",
            t=instant,
        )
    assert rendered == ("$1,234.56|Tue, Nov 24 · 2:30 PM PST|PST|2026-11-24T22:30:00Z|1 h 5 min")


# ---------- macros and layouts ----------


def test_badge_and_slot_card_macros(tiny_app: Flask) -> None:
    source = """{% import "macros.html" as ui %}
{{ ui.badge("no_show") }}
{% call ui.slot_card("Botox", "Dr. Park", "Pacific Heights", "Tue, Nov 24 · 2:30 PM", "PST",
                     "5:30 PM EST") %}<button>Accept</button>{% endcall %}"""
    with tiny_app.test_request_context("/"):
        html = render_template_string(source)
    assert '<span class="badge no_show">No-show</span>' in html
    assert '<span class="slot-date">Tue, Nov 24</span>' in html
    assert "2:30 PM" in html and ">PST</abbr>" in html
    assert "Practice time: 5:30 PM EST" in html
    assert '<footer class="slot-actions"><button>Accept</button></footer>' in html


def test_field_macro_shows_errors_under_the_input(tiny_app: Flask) -> None:
    class NameForm(Form):
        name = StringField("Name", validators=[InputRequired()])

    form = NameForm()
    form.validate()
    with tiny_app.test_request_context("/"):
        html = render_template_string(
            '{% import "macros.html" as ui with context %}{{ ui.field(form.name) }}', form=form
        )
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="name-error"' in html
    assert html.index("<input") < html.index('class="field-error"')


def test_staff_nav_lists_registered_pages_and_marks_the_current_one(tiny_app: Flask) -> None:
    source = '{% extends "staff/_layout.html" %}{% block page_title %}Today{% endblock %}'
    with tiny_app.test_request_context("/staff/"):
        tiny_app.preprocess_request()
        html = render_template_string(source)
    assert 'href="/staff/" class="active" aria-current="page">Today</a>' in html
    assert html.count("<li>") == 1  # the other staff pages are not registered here
    assert "<title>Today · Waitlist portal</title>" in html
    assert "style=" not in html and "<style" not in html


def test_patient_layout_has_practice_name_and_phone(tiny_app: Flask) -> None:
    source = '{% extends "patient/_layout.html" %}{% block content %}<p>Hi</p>{% endblock %}'
    with tiny_app.test_request_context("/"):
        default = render_template_string(source)
        named = render_template_string(
            source,
            practice_name="Lumière Aesthetics",
            location_phone="(415) 555-0134",
            location_phone_tel="+14155550134",
        )
    assert "Your clinic" in default and "Questions?" not in default
    assert "Lumière Aesthetics" in named
    assert 'href="tel:+14155550134">(415) 555-0134</a>' in named


def test_pages_carry_the_csrf_header_and_no_inline_code(tiny_app: Flask) -> None:
    CSRFProtect(tiny_app)
    source = '{% extends "patient/_layout.html" %}{% block content %}<p>Hi</p>{% endblock %}'
    with tiny_app.test_request_context("/"):
        html = render_template_string(source)
    assert "hx-headers='{&#34;X-CSRFToken&#34;" not in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert '<meta name="htmx-config"' in html
    assert "<script>" not in html and "style=" not in html and "<style" not in html


def test_pagination_keeps_the_query_string(tiny_app: Flask) -> None:
    pager = SimpleNamespace(page=2, pages=5, has_prev=True, has_next=False, prev_num=1, next_num=3)
    source = '{% from "macros.html" import pagination with context %}{{ pagination(pager) }}'
    with tiny_app.test_request_context("/staff/?actor=dana&page=2"):
        tiny_app.preprocess_request()
        html = render_template_string(source, pager=pager)
    assert 'href="/staff/?actor=dana&amp;page=1" rel="prev"' in html
    assert 'rel="next"' not in html
    assert "Page 2 of 5" in html


# ---------- error handlers ----------


def test_missing_page_renders_friendly_html(tiny_client) -> None:
    response = tiny_client.get("/nope", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "We couldn&#39;t find that page" in response.text
    assert 'class="error-card"' in response.text


def test_api_paths_get_json_with_a_stable_code(tiny_client) -> None:
    response = tiny_client.get("/api/nope")
    assert response.status_code == 404
    assert response.json == {
        "error": {"code": "not_found", "message": errors.ERROR_TEXTS[404].message}
    }


def test_clients_preferring_json_get_json_anywhere(tiny_client) -> None:
    response = tiny_client.get("/nope", headers={"Accept": "application/json"})
    assert response.json["error"]["code"] == "not_found"


def test_browsers_get_html_even_when_they_accept_anything(tiny_client) -> None:
    response = tiny_client.get(
        "/nope", headers={"Accept": "text/html,application/json;q=0.9,*/*;q=0.8"}
    )
    assert response.mimetype == "text/html"


def test_method_not_allowed_keeps_the_allow_header(tiny_client) -> None:
    response = tiny_client.post("/api/only-get")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_a_views_own_message_is_shown(tiny_client) -> None:
    html = tiny_client.get("/offer")
    data = tiny_client.get("/offer", headers={"Accept": "application/json"})
    assert html.status_code == 410
    assert "That offer was taken by someone else." in html.text
    assert data.json == {
        "error": {"code": "gone", "message": "That offer was taken by someone else."}
    }


def test_too_many_requests_sets_retry_after(tiny_client) -> None:
    response = tiny_client.get("/slow-down")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    assert "30 seconds" in response.text


def test_flask_limiter_breach_is_a_json_429_with_retry_after() -> None:
    app = make_app(TESTING=False)
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://")

    @app.get("/api/ping")
    @limiter.limit("1/minute")
    def ping() -> str:
        return "pong"

    client = app.test_client()
    assert client.get("/api/ping").status_code == 200
    response = client.get("/api/ping")
    assert response.status_code == 429
    assert response.json["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_unhandled_exception_is_a_500_page_without_internals(tiny_client, caplog) -> None:
    with caplog.at_level(logging.ERROR):
        response = tiny_client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "Traceback" not in response.text and "hunter2" not in response.text
    assert "RuntimeError" in caplog.text  # logged for us, not shown to them


def test_unhandled_exception_on_the_api_is_json(tiny_client) -> None:
    response = tiny_client.get("/api/boom")
    assert response.status_code == 500
    assert response.json == {
        "error": {"code": "internal_error", "message": errors.ERROR_TEXTS[500].message}
    }


def test_csrf_failure_asks_to_reload() -> None:
    app = make_app(TESTING=False)
    CSRFProtect(app)

    @app.post("/form")
    def form() -> str:
        return "saved"

    @app.post("/api/form")
    def api_form() -> str:
        return "saved"

    client = app.test_client()
    page = client.post("/form", data={"x": "1"})
    data = client.post("/api/form", data={"x": "1"})
    assert page.status_code == 400
    assert "Your session expired, please reload the page and try again." in page.text
    assert data.status_code == 400
    assert data.json["error"]["code"] == "csrf_failed"


def test_error_page_renders_even_when_csrf_cannot_work() -> None:
    # No SECRET_KEY: csrf_token() would raise, so the error page must not call it.
    app = make_app(TESTING=False, SECRET_KEY=None)
    CSRFProtect(app)
    response = app.test_client().get("/nope")
    assert response.status_code == 404
    assert 'class="error-card"' in response.text  # the real page, not the fallback
    assert "X-CSRFToken" not in response.text


def test_error_page_falls_back_to_plain_html_when_templates_fail(tmp_path: Path) -> None:
    app = Flask(__name__, template_folder=str(tmp_path))  # no templates at all
    errors.init_app(app)
    response = app.test_client().get("/nope")
    assert response.status_code == 404
    assert "<h1>We couldn&#39;t find that page</h1>" in response.text


def test_exceptions_still_propagate_in_testing_mode() -> None:
    app = make_app(TESTING=True)
    with pytest.raises(RuntimeError):
        app.test_client().get("/boom")
