"""The .ics across zones and changes: the year's VTIMEZONE, a 1-hour alarm, SEQUENCE on a
move, read back with icalendar *and* a second parser (``ical``), and the Google/Outlook
links of a moved visit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar

from portal.db import db
from portal.models import Notification
from portal.models.enums import AppointmentStatus, Channel, Purpose
from portal.services import reschedule
from portal.services.audit import Actor
from portal.services.calendar import appointment_ics, google_calendar_url, outlook_calendar_url
from portal.services.notify.messages import render_message
from tests import factories as f
from tests.calendar.conftest import book_visit

ZONES = [
    ("America/New_York", datetime(2026, 11, 1, 1, 30)),  # the repeated hour (first)
    ("America/Los_Angeles", datetime(2027, 3, 14, 10, 0)),  # spring-forward day
    ("America/Phoenix", datetime(2027, 3, 14, 10, 0)),  # no DST
    ("Pacific/Honolulu", datetime(2026, 12, 31, 16, 0)),  # New Year's Eve, no DST
    ("Europe/London", datetime(2027, 10, 31, 9, 0)),  # the October change
    ("Australia/Lord_Howe", datetime(2026, 10, 5, 9, 0)),  # 30-minute DST
]


@pytest.mark.parametrize(("tz", "local_start"), ZONES, ids=[z for z, _ in ZONES])
def test_both_parsers_read_the_same_event_and_the_vtimezone_matches_the_zone_all_year(
    app: object, tz: str, local_start: datetime
) -> None:
    visit = book_visit(tz, local_start)
    raw = appointment_ics(visit.appointment)

    first = Calendar.from_ical(raw)
    [event] = first.events
    second = IcsCalendarStream.calendar_from_ics(raw.decode())
    [other] = second.events

    start = local_start.replace(tzinfo=ZoneInfo(tz))
    assert event.start.astimezone(UTC) == start.astimezone(UTC)
    assert other.dtstart.astimezone(UTC) == start.astimezone(UTC)
    assert other.uid == str(event["UID"]) and other.sequence == event["SEQUENCE"]
    assert other.summary == str(event["SUMMARY"])
    [alarm] = other.alarm
    assert alarm.action == "DISPLAY" and alarm.trigger == -timedelta(hours=1)
    assert event.subcomponents[0]["TRIGGER"].td == -timedelta(hours=1)
    # icalendar rebuilds a tzinfo from the VTIMEZONE alone: it agrees with the zone
    # database on every day of the visit's year.
    [vtimezone] = first.timezones
    assert vtimezone.tz_name == tz
    from_file = vtimezone.to_tz()
    real = ZoneInfo(tz)
    day = datetime(local_start.year, 1, 1, 12)
    while day.year == local_start.year:
        assert day.replace(tzinfo=from_file).utcoffset() == day.replace(tzinfo=real).utcoffset()
        day += timedelta(days=1)


def test_a_moved_visit_keeps_its_uid_bumps_sequence_and_mails_the_update(
    app: object, providers: object
) -> None:
    visit = book_visit("America/Los_Angeles", datetime(2027, 3, 12, 14, 30))
    slot = visit.appointment.slot
    later = f.slot(
        start_at=datetime(2027, 3, 14, 14, 30, tzinfo=ZoneInfo("America/Los_Angeles")),
        practitioner=slot.practitioner,
        service=slot.service,
    )
    db.session.commit()
    before = Calendar.from_ical(appointment_ics(visit.appointment)).events[0]

    reschedule.reschedule_appointment(
        visit.appointment.id, later.id, Actor.patient(visit.patient.id)
    )
    db.session.commit()

    raw = appointment_ics(visit.appointment)
    after = Calendar.from_ical(raw).events[0]
    other = IcsCalendarStream.calendar_from_ics(raw.decode()).events[0]
    assert after["UID"] == before["UID"] == other.uid
    assert after["SEQUENCE"] == before["SEQUENCE"] + 1 == other.sequence
    assert b"DTSTART;TZID=America/Los_Angeles:20270314T143000\r\n" in raw
    assert other.dtstart.utcoffset() == timedelta(hours=-7)  # PDT now
    moved = db.session.query(Notification).filter(Notification.dedupe_key.like("moved:%")).one()
    email = render_message(moved, Channel.EMAIL)
    [attachment] = email.attachments
    assert attachment.params["method"] == "PUBLISH"
    assert Calendar.from_ical(attachment.content).events[0]["SEQUENCE"] == after["SEQUENCE"]
    assert "moved" in (email.subject or "") and moved.purpose == Purpose.CONFIRMATION

    google = parse_qs(urlsplit(google_calendar_url(visit.appointment)).query)
    assert google["dates"] == ["20270314T213000Z/20270314T221500Z"]
    assert google["ctz"] == ["America/Los_Angeles"]
    outlook = parse_qs(urlsplit(outlook_calendar_url(visit.appointment)).query)
    assert outlook["startdt"] == ["2027-03-14T14:30:00-07:00"]
    assert outlook["enddt"] == ["2027-03-14T15:15:00-07:00"]
    assert visit.appointment.status == AppointmentStatus.CONFIRMED


def test_a_cancelled_visit_has_no_alarm(app: object) -> None:
    from portal.services.audit import SYSTEM
    from portal.services.release import release_slot

    visit = book_visit("Europe/London", datetime(2027, 10, 31, 9, 0))
    release_slot(visit.appointment.slot_id, SYSTEM)
    db.session.commit()
    raw = appointment_ics(visit.appointment)
    calendar = IcsCalendarStream.calendar_from_ics(raw.decode())
    assert b"METHOD:CANCEL" in raw and calendar.events[0].alarm == []
