"""Calendar entries for an appointment: an RFC 5545 ``.ics`` file and Google/Outlook links.

Times are given in the clinic's zone (the appointment happens there): the ``.ics`` names
it with TZID and carries a VTIMEZONE bounded to the visit, Google gets UTC plus ``ctz``,
Outlook an ISO time with its offset. Events name the service, practitioner and clinic,
never the patient: calendars get shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

from flask import current_app
from icalendar import Alarm, Calendar, Event

from portal.models import Appointment
from portal.models.enums import AppointmentStatus
from portal.services.links import appointment_url
from portal.services.timezones import to_local

PRODID = "-//Waitlist Portal//Appointments//EN"
GOOGLE_URL = "https://calendar.google.com/calendar/render"
OUTLOOK_URL = "https://outlook.live.com/calendar/0/action/compose"
#: The name an attached or downloaded event file goes by.
ICS_FILENAME = "appointment.ics"
ICS_CONTENT_TYPE = "text/calendar; charset=utf-8"
_FALLBACK_HOST = "waitlist.portal"
#: The event's alarm goes off this long before the visit.
ALARM_BEFORE = timedelta(hours=1)


@dataclass(frozen=True)
class EventText:
    """What a calendar entry says about one appointment."""

    title: str
    place: str
    details: str


def event_uid(appointment: Appointment) -> str:
    """Return the appointment's stable event UID (``appointment-<id>@<public host>``)."""
    host = urlsplit(current_app.config.get("PUBLIC_BASE_URL") or "").hostname
    return f"appointment-{appointment.id}@{host or _FALLBACK_HOST}"


def event_text(appointment: Appointment) -> EventText:
    """Describe the appointment for a calendar: service, practitioner, clinic, link."""
    slot, practice = appointment.slot, current_app.config["PRACTICE_NAME"]
    location = slot.location
    place = ", ".join(part for part in (location.name, location.address) if part)
    link = appointment_url(appointment.id, appointment.patient_id, slot.start_at)
    lines = [
        f"{slot.service.name} with {slot.practitioner.name}",
        f"{practice} · {place}",
    ]
    if location.phone:
        lines.append(f"Phone: {location.phone}")
    lines += ["", f"Your appointment, and how to cancel: {link}"]
    return EventText(
        title=f"{slot.service.name} with {slot.practitioner.name} · {practice}",
        place=place,
        details="\n".join(lines),
    )


def _local_span(appointment: Appointment) -> tuple[datetime, datetime]:
    slot = appointment.slot
    tz_name = slot.location.timezone
    return to_local(slot.start_at, tz_name), to_local(slot.end_at, tz_name)


def appointment_ics(appointment: Appointment) -> bytes:
    """Return the appointment as an iCalendar file: one VEVENT, ``METHOD:CANCEL`` once cancelled.

    The UID never changes and ``SEQUENCE`` is the appointment's ``calendar_sequence``,
    bumped on every change (a move, a cancellation), so a calendar replaces its copy
    rather than adding one. A live visit carries a 1-hour display alarm.
    """
    start, end = _local_span(appointment)
    text = event_text(appointment)
    cancelled = appointment.status == AppointmentStatus.CANCELLED
    event = Event.new(
        uid=event_uid(appointment),
        start=start,
        end=end,
        summary=text.title,
        location=text.place,
        description=text.details,
        url=appointment_url(appointment.id, appointment.patient_id, appointment.slot.start_at),
        status="CANCELLED" if cancelled else "CONFIRMED",
        sequence=appointment.calendar_sequence,
    )
    if not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", text.title)
        alarm.add("trigger", -ALARM_BEFORE)
        event.add_component(alarm)
    method = "CANCEL" if cancelled else "PUBLISH"
    calendar = Calendar.new(prodid=PRODID, method=method, subcomponents=[event])
    # The whole year of the visit (and the day after, for a visit on New Year's Eve):
    # calendar apps cache a VTIMEZONE by its TZID, so one that covers only the visit's
    # day would misplace later events in the same zone. Not the default 1970-2038 span.
    calendar.add_missing_timezones(
        first_date=date(start.year, 1, 1), last_date=date(end.year, 12, 31) + timedelta(days=1)
    )
    return calendar.to_ical()


def _query(params: dict[str, str]) -> str:
    # %20 for spaces (Outlook shows '+' literally); '/' kept for Google's START/END.
    return urlencode(params, quote_via=quote, safe="/")


def _utc_stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def google_calendar_url(appointment: Appointment) -> str:
    """Return a Google Calendar "add event" link (UTC times, ``ctz`` = the clinic's zone)."""
    slot, text = appointment.slot, event_text(appointment)
    params = {
        "action": "TEMPLATE",
        "text": text.title,
        "dates": f"{_utc_stamp(slot.start_at)}/{_utc_stamp(slot.end_at)}",
        "ctz": slot.location.timezone,
        "details": text.details,
        "location": text.place,
    }
    return f"{GOOGLE_URL}?{_query(params)}"


def outlook_calendar_url(appointment: Appointment) -> str:
    """Return an Outlook.com compose link (ISO 8601 times with the clinic's offset)."""
    start, end = _local_span(appointment)
    text = event_text(appointment)
    params = {
        "rru": "addevent",
        "subject": text.title,
        "startdt": start.isoformat(timespec="seconds"),
        "enddt": end.isoformat(timespec="seconds"),
        "body": text.details,
        "location": text.place,
    }
    return f"{OUTLOOK_URL}?{_query(params)}"
