"""Ids from URLs, query strings and forms: one converter, one parser, never a 500.

Every table's primary key is a PostgreSQL ``integer``; a larger number used to reach
the database and come back as "integer out of range" (a 500). The ``id`` converter
refuses anything but 1..2^31-1 in ASCII digits (404), for every route at once.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter, Rule

from portal.web.ids import MAX_ID, IdConverter, parse_id
from tests import factories as f
from tests.api.conftest import ApiClient
from tests.conftest import csrf_token_from

BAD_IDS = [
    "2147483648",  # 2^31: one past PostgreSQL's integer
    "99999999999999999999999",
    "0",
    "-1",
    "007",
    "%D9%A3",  # ARABIC-INDIC DIGIT THREE: \d matches it, int() reads it
    "%C2%B2",  # SUPERSCRIPT TWO: str.isdigit() says yes, int() raises
    "1e3",
    "%201",
]


def _id_rules(app: Flask) -> list[Rule]:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if any(isinstance(c, IdConverter) for c in rule._converters.values())
    ]


def _url_with(rule: Rule, bad: str) -> str:
    """Build the rule's path with every id argument set to ``bad`` and the others to "x"."""

    def value(match: re.Match[str]) -> str:
        converter = rule._converters[match.group(1)]
        return bad if isinstance(converter, IdConverter) else "x"

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", value, rule.rule)


def test_no_route_takes_an_unbounded_integer(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        for name, converter in rule._converters.items():
            assert not isinstance(converter, IntegerConverter), f"{rule.rule}: <int:{name}>"
            if name.endswith(("_id", "_ref")):
                assert isinstance(converter, IdConverter), f"{rule.rule}: {name} is not <id:>"


def test_id_routes_cover_staff_patient_and_api_pages(app: Flask) -> None:
    prefixes = {rule.rule.split("/")[1] for rule in _id_rules(app)}
    assert {"staff", "o", "api"} <= prefixes


@pytest.mark.parametrize("bad", BAD_IDS)
def test_every_id_route_answers_404_to_a_bad_id(
    app: Flask, signed_in: FlaskClient, api: ApiClient, bad: str
) -> None:
    token = csrf_token_from(signed_in.get("/staff/").text)
    headers = {"Authorization": f"Bearer {api.token}"}
    for rule in _id_rules(app):
        url = _url_with(rule, bad)
        if "POST" in rule.methods:
            response = signed_in.post(url, data={"csrf_token": token}, headers=headers)
        elif "PATCH" in rule.methods:
            response = signed_in.patch(url, json={}, headers=headers)
        else:
            response = signed_in.get(url, headers=headers)
        assert response.status_code == 404, f"{rule.rule} {bad}: {response.status_code}"


@pytest.mark.parametrize(
    "url",
    [
        "/staff/slots/2147483648",
        "/staff/patients/2147483648",
        "/api/v1/slots/2147483648",
        "/api/v1/appointments/99999999999999999999999",
    ],
)
def test_ids_past_int32_are_not_found(signed_in: FlaskClient, api: ApiClient, url: str) -> None:
    response = signed_in.get(url, headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 404


def test_the_largest_id_is_looked_up(signed_in: FlaskClient) -> None:
    assert signed_in.get(f"/staff/slots/{MAX_ID}").status_code == 404  # routed, not found
    slot = f.slot()
    assert signed_in.get(f"/staff/slots/{slot.id}").status_code == 200


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        (str(MAX_ID), MAX_ID),
        (str(MAX_ID + 1), None),
        ("0", None),
        ("-5", None),
        ("+5", None),
        (" 5", None),
        ("5\n", None),
        ("05", None),
        ("²", None),
        ("٣", None),
        ("9" * 23, None),
        ("", None),
        (None, None),
        ("1\x00", None),
    ],
)
def test_parse_id(raw: str | None, expected: int | None) -> None:
    assert parse_id(raw) == expected


@pytest.mark.parametrize("patient_id", ["2147483648", "99999999999999999999999", "²", "x"])
def test_a_bad_patient_id_in_the_booking_form_is_a_message(
    signed_in: FlaskClient, patient_id: str
) -> None:
    slot = f.slot()
    token = csrf_token_from(signed_in.get("/staff/").text)
    response = signed_in.post(
        f"/staff/slots/{slot.id}/book",
        data={"csrf_token": token, "patient_id": patient_id},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Choose a patient to book." in response.text


@pytest.mark.parametrize("offer_id", ["2147483648", "²"])
def test_a_bad_offer_id_in_the_hold_form_is_a_message(
    signed_in: FlaskClient, offer_id: str
) -> None:
    slot = f.slot()
    token = csrf_token_from(signed_in.get("/staff/").text)
    response = signed_in.post(
        f"/staff/slots/{slot.id}/hold/complete",
        data={"csrf_token": token, "offer_id": offer_id},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "This hold has ended" in response.text


@pytest.mark.parametrize("page", ["99999999999999999999999", "2147483648", "-3", "²"])
def test_an_absurd_page_number_is_not_a_500(signed_in: FlaskClient, page: str) -> None:
    assert signed_in.get(f"/staff/patients?page={page}").status_code == 200


@pytest.mark.parametrize("value", ["2147483648", "99999999999999999999999", "²", "0"])
def test_api_query_ids_are_checked_by_the_same_parser(api: ApiClient, value: str) -> None:
    response = api.get(f"/api/v1/practitioners?location_id={value}")
    assert response.status_code == 422
