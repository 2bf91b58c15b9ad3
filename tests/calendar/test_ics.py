"""The .ics file: RFC 5545 essentials, the clinic's zone with a bounded VTIMEZONE, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Event

from portal.db import db
from portal.services.appointments import cancel_appointment
from portal.services.audit import SYSTEM
from portal.services.calendar import appointment_ics
from tests.calendar.conftest import LA, NEW_YORK, PATIENT_NAME, Visit


def _parse(raw: bytes) -> tuple[Calendar, Event]:
    calendar = Calendar.from_ical(raw)
    assert len(calendar.events) == 1
    return calendar, calendar.events[0]


def test_the_file_parses_back_with_uid_stamp_and_zone(la_visit: Visit) -> None:
    raw = appointment_ics(la_visit.appointment)
    calendar, event = _parse(raw)

    assert calendar["METHOD"] == "PUBLISH"
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    assert str(event["UID"]) == f"appointment-{la_visit.appointment.id}@portal.test"
    assert event.DTSTAMP.tzinfo is not None and event.DTSTAMP.utcoffset() == timedelta(0)
    assert event["DTSTART"].params["TZID"] == LA
    assert event["DTEND"].params["TZID"] == LA
    assert [tz.tz_name for tz in calendar.timezones] == [LA]
    assert event["STATUS"] == "CONFIRMED"


def test_times_are_the_clinics_wall_clock(la_visit: Visit) -> None:
    raw = appointment_ics(la_visit.appointment)
    _, event = _parse(raw)

    assert b"DTSTART;TZID=America/Los_Angeles:20270112T143000\r\n" in raw
    assert b"DTEND;TZID=America/Los_Angeles:20270112T151500\r\n" in raw
    assert event.start.replace(tzinfo=None) == datetime(2027, 1, 12, 14, 30)
    assert event.start.astimezone(UTC) == datetime(2027, 1, 12, 22, 30, tzinfo=UTC)
    assert event.end - event.start == timedelta(minutes=45)


def test_the_event_names_service_practitioner_and_clinic_never_the_patient(
    la_visit: Visit,
) -> None:
    raw = appointment_ics(la_visit.appointment)
    _, event = _parse(raw)

    assert "Lip filler" in event["SUMMARY"] and "Dr. Maya Lee" in event["SUMMARY"]
    assert "Glow Medical Spa" in event["SUMMARY"]
    assert event["LOCATION"] == "Sunset Boulevard, 8500 Sunset Blvd, West Hollywood"
    assert f"http://portal.test/a/{la_visit.token}" in event["DESCRIPTION"]
    assert str(event["URL"]) == f"http://portal.test/a/{la_visit.token}"
    unfolded = raw.replace(b"\r\n ", b"")
    assert PATIENT_NAME.encode() not in unfolded
    assert PATIENT_NAME.split()[0].encode() not in unfolded
    assert la_visit.patient.email.encode() not in unfolded


def test_the_uid_is_stable(la_visit: Visit) -> None:
    first = _parse(appointment_ics(la_visit.appointment))[1]
    second = _parse(appointment_ics(la_visit.appointment))[1]
    assert first["UID"] == second["UID"]


def test_a_dst_change_on_the_day_keeps_the_wall_clock(dst_visit: Visit) -> None:
    raw = appointment_ics(dst_visit.appointment)
    calendar, event = _parse(raw)

    assert b"DTSTART;TZID=America/New_York:20270314T100000\r\n" in raw
    # Clocks went forward at 2:00: 10:00 EDT is 14:00Z (it would be 15:00Z in EST).
    assert event.start.astimezone(UTC) == datetime(2027, 3, 14, 14, 0, tzinfo=UTC)
    (zone,) = calendar.timezones
    assert zone.tz_name == NEW_YORK
    offsets = {sub.name: sub["TZOFFSETTO"].td for sub in zone.subcomponents}
    assert offsets == {"STANDARD": timedelta(hours=-5), "DAYLIGHT": timedelta(hours=-4)}
    (daylight,) = [sub for sub in zone.subcomponents if sub.name == "DAYLIGHT"]
    clocks_forward = daylight.DTSTART
    assert clocks_forward == datetime(2027, 3, 14, 3, 0)


def test_the_vtimezone_covers_the_visits_year_and_no_more(dst_visit: Visit) -> None:
    calendar, _ = _parse(appointment_ics(dst_visit.appointment))
    starts = [sub.DTSTART.date() for sub in calendar.timezones[0].subcomponents]
    assert starts and all(date(2027, 1, 1) <= d <= date(2028, 1, 1) for d in starts)
    # Both 2027 changes are in it (a calendar caching the zone by TZID reads July right).
    assert {date(2027, 3, 14), date(2027, 11, 7)} <= set(starts)


def test_a_cancelled_appointment_is_published_as_cancelled(la_visit: Visit) -> None:
    booked = _parse(appointment_ics(la_visit.appointment))[1]
    cancel_appointment(la_visit.appointment, SYSTEM, reason=None)
    db.session.flush()

    calendar, cancelled = _parse(appointment_ics(la_visit.appointment))

    assert calendar["METHOD"] == "CANCEL"
    assert cancelled["STATUS"] == "CANCELLED"
    assert cancelled["UID"] == booked["UID"]
    assert cancelled["SEQUENCE"] > booked["SEQUENCE"]
