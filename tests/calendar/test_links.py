"""Google Calendar and Outlook links: right instants, right zone, properly encoded."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.models import Appointment
from portal.services.calendar import google_calendar_url, outlook_calendar_url
from tests.calendar.conftest import LA, NEW_YORK, PATIENT_NAME, Visit


def _query(url: str) -> dict[str, str]:
    query = parse_qs(urlsplit(url).query, strict_parsing=True)
    assert all(len(values) == 1 for values in query.values())
    return {key: values[0] for key, values in query.items()}


def test_google_link_has_utc_dates_and_the_clinic_zone(la_visit: Visit) -> None:
    url = google_calendar_url(la_visit.appointment)
    parts, query = urlsplit(url), _query(url)

    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "calendar.google.com",
        "/calendar/render",
    )
    assert query["action"] == "TEMPLATE"
    assert query["dates"] == "20270112T223000Z/20270112T231500Z"
    assert query["ctz"] == LA
    assert "Lip filler with Dr. Maya Lee" in query["text"]
    assert query["location"] == "Sunset Boulevard, 8500 Sunset Blvd, West Hollywood"
    assert f"http://portal.test/a/{la_visit.token}" in query["details"]


def test_google_link_across_the_dst_change(dst_visit: Visit) -> None:
    query = _query(google_calendar_url(dst_visit.appointment))
    assert query["dates"] == "20270314T140000Z/20270314T144500Z"
    assert query["ctz"] == NEW_YORK


def test_outlook_link_has_iso_times_with_the_clinic_offset(la_visit: Visit) -> None:
    url = outlook_calendar_url(la_visit.appointment)
    parts, query = urlsplit(url), _query(url)

    assert (parts.netloc, parts.path) == ("outlook.live.com", "/calendar/0/action/compose")
    assert query["startdt"] == "2027-01-12T14:30:00-08:00"
    assert query["enddt"] == "2027-01-12T15:15:00-08:00"
    assert "Lip filler with Dr. Maya Lee" in query["subject"]
    assert query["location"] == "Sunset Boulevard, 8500 Sunset Blvd, West Hollywood"
    assert f"http://portal.test/a/{la_visit.token}" in query["body"]


def test_outlook_link_across_the_dst_change(dst_visit: Visit) -> None:
    query = _query(outlook_calendar_url(dst_visit.appointment))
    assert query["startdt"] == "2027-03-14T10:00:00-04:00"
    assert query["enddt"] == "2027-03-14T10:45:00-04:00"


@pytest.mark.parametrize("make_url", [google_calendar_url, outlook_calendar_url])
def test_links_are_encoded_and_name_no_patient(
    la_visit: Visit, make_url: Callable[[Appointment], str]
) -> None:
    url = make_url(la_visit.appointment)
    query = urlsplit(url).query
    assert " " not in url and "\n" not in url
    assert "+" not in query  # spaces are %20: Outlook would show a literal '+'
    assert PATIENT_NAME.split()[0] not in url and PATIENT_NAME.split()[0] not in str(_query(url))
