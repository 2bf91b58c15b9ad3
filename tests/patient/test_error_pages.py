"""Every patient error page gives the clinic's number: nobody is left without a way on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.db import now_utc
from portal.services.links import LinkPurpose, make_token
from tests import factories as f
from tests.patient.conftest import Scene, build_scene, offer_token

FIRST_LOCATION = "(310) 555-0142"  # created before the scene's clinic
SCENE_LOCATION = "(212) 555-0100"  # the scene's clinic, Fifth Avenue


@pytest.fixture
def scene(app: Flask) -> Scene:
    f.location(name="Santa Monica", phone="+13105550142", timezone="America/Los_Angeles")
    return build_scene()


def _expired_token(scene: Scene) -> str:
    return make_token(
        LinkPurpose.OFFER, scene.offer_a.id, scene.patient_a.id, now_utc() - timedelta(days=1)
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/o/not-a-token", 404),
        ("/a/not-a-token", 404),
        ("/a/not-a-token/calendar.ics", 404),
        ("/o/not-a-token/alternatives/x", 404),
    ],
)
def test_an_invalid_link_names_the_first_locations_phone(
    client: FlaskClient, scene: Scene, path: str, status: int
) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert FIRST_LOCATION in response.text
    assert 'href="tel:+13105550142"' in response.text


def test_an_expired_link_names_a_phone(client: FlaskClient, scene: Scene) -> None:
    response = client.get(f"/o/{_expired_token(scene)}")
    assert response.status_code == 410
    assert FIRST_LOCATION in response.text


def test_a_configured_clinic_phone_comes_first(
    app: Flask, client: FlaskClient, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "CLINIC_PHONE", "+14155550199")
    response = client.get("/o/not-a-token")
    assert "(415) 555-0199" in response.text
    assert FIRST_LOCATION not in response.text


@pytest.mark.parametrize(
    ("suffix", "method", "status"),
    [
        ("/accept", "get", 405),  # a link scanner, or a bookmark of the form's action
        ("/alternatives/abc", "post", 404),
        ("/alternatives/2147483648", "post", 404),
        ("/nowhere", "get", 404),
    ],
)
def test_an_error_under_a_valid_link_names_that_locations_phone(
    client: FlaskClient, scene: Scene, suffix: str, method: str, status: int
) -> None:
    token = offer_token(scene.offer_a)
    response = getattr(client, method)(f"/o/{token}{suffix}")
    assert response.status_code == status
    assert SCENE_LOCATION in response.text
    assert 'class="brand-mark"' in response.text  # the patient layout, not a bare page


def test_there_is_no_phone_to_give_without_any_location(client: FlaskClient) -> None:
    response = client.get("/o/not-a-token")
    assert response.status_code == 404
    assert "call the clinic" in response.text.lower()
