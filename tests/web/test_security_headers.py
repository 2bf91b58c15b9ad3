"""Headers that keep patient data out of caches and browsers on HTTPS (OWASP ASVS L2)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal import create_app
from tests import factories as f
from tests.api.conftest import ApiClient


def test_api_answers_are_never_cached(api: ApiClient) -> None:
    for path in ("/api/v1/locations", f"/api/v1/slots/{f.slot().id}", "/api/v1/slots/999999"):
        assert api.get(path).headers["Cache-Control"] == "no-store", path
    created = api.post("/api/v1/patients", json={"name": "Ana Lopez", "phone": "+1 212 555 0142"})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"


def test_pages_are_never_cached_but_static_files_may_be(client: FlaskClient) -> None:
    assert client.get("/staff/login").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/css/app.css").headers.get("Cache-Control", "")


@pytest.mark.parametrize("env", ["development", "production"])
def test_hsts_and_secure_cookies_in_production_only(
    env: str, app_config: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_ENV", env)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://clinic.example")
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    monkeypatch.setenv("REDIS_URL", str(app_config["REDIS_URL"]))
    monkeypatch.setenv("DATABASE_URL", str(app_config["SQLALCHEMY_DATABASE_URI"]))
    app = create_app()
    production = env == "production"
    assert app.config["SESSION_COOKIE_SECURE"] is production
    response = app.test_client().get("/livez")
    assert ("Strict-Transport-Security" in response.headers) is production
    if production:
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
