"""A new user's first minutes: the front page, the favicon, and where they lead."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from tests import factories as f


def test_the_front_page_leads_to_staff_sign_in_and_the_clinic(client: FlaskClient) -> None:
    f.location(name="Glow — SoHo", phone="+12125550100")
    response = client.get("/")
    assert response.status_code == 200
    assert 'href="/staff/login"' in response.text
    assert "Glow — SoHo" in response.text
    assert 'href="tel:+12125550100"' in response.text
    assert "link in the text or email" in response.text


def test_the_front_page_works_before_any_location_exists(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert 'href="/staff/login"' in response.text


def test_signed_in_staff_go_straight_to_their_day(signed_in: FlaskClient) -> None:
    response = signed_in.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"


def test_favicon_is_served_and_linked_from_every_layout(app: Flask, signed_in: FlaskClient) -> None:
    client = app.test_client()  # anonymous, beside the signed-in one
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
    assert icon.data[:4] == b"\x00\x00\x01\x00"  # an ICO header
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and b"<svg" in svg.data

    pages = [
        client.get("/").text,  # front page
        client.get("/staff/login").text,  # sign-in
        client.get("/o/not-a-token").text,  # patient layout (an invalid link)
        client.get("/no/such/page").text,  # error page
        signed_in.get("/staff/").text,  # staff layout
    ]
    for page in pages:
        assert re.search(r'<link rel="icon" href="/favicon.ico"', page), page[:400]
        assert 'href="/static/favicon.svg"' in page
