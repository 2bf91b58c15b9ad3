"""Paged staff lists: a page past the last one says so and leads back."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal.services.notify.timeline import PAGE_SIZE
from tests import factories as f


def test_a_page_past_the_last_says_so_and_links_to_the_last(signed_in: FlaskClient) -> None:
    for n in range(PAGE_SIZE + 3):
        f.patient(name=f"Pat Smith {n:02d}")

    html = signed_in.get("/staff/patients?q=smith&page=999").text

    assert "Page 999 is past the end: there are only 2 pages." in html
    assert 'href="/staff/patients?q=smith&amp;page=2"' in html
    assert "No patient matches" not in html
    assert 'rel="prev"' not in html  # no "previous" to page 998


def test_one_page_past_a_single_page(signed_in: FlaskClient) -> None:
    f.patient(name="Only One")
    html = signed_in.get("/staff/patients?page=2").text
    assert "Page 2 is past the end: there is only 1 page." in html
    assert 'href="/staff/patients?page=1"' in html


@pytest.mark.parametrize("query", ["?q=nobody&page=5", "?page=5"])
def test_nothing_at_all_is_still_just_empty(signed_in: FlaskClient, query: str) -> None:
    html = signed_in.get(f"/staff/patients{query}").text
    assert "past the end" not in html
    assert "No patient" in html


def test_the_last_page_itself_lists_its_rows(signed_in: FlaskClient) -> None:
    for n in range(PAGE_SIZE + 3):
        f.patient(name=f"Pat Smith {n:02d}")
    html = signed_in.get("/staff/patients?page=2").text
    assert "Pat Smith 27" in html and "Page 2 of 2" in html
    assert "past the end" not in html
