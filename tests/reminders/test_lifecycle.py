"""Reminders follow their appointment: planned when booked, cancelled with it, moved with it.

Time is a manual clock; texts go to the outbox backend, so what was "sent" is read back
from the outbox (``drain`` plays the worker).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from jobs.reminders import dispatch_reminders
from portal.clock import ManualClock, use_clock
from portal.db import db
from portal.models import Appointment, Notification, OutboxMessage, Patient, Reminder, Slot
from portal.models.enums import (
    AppointmentSource,
    Channel,
    NotificationStatus,
    Purpose,
    ReminderStatus,
)
from portal.services import booking
from portal.services.audit import SYSTEM, Actor
from portal.services.notify.messages import render_message
from portal.services.release import release_slot
from portal.services.reminders import reminders_for, send_reminder
from portal.services.reschedule import reschedule_appointment
from portal.services.settings import set_setting
from tests import factories as f
from tests.notify.conftest import drain
from tests.patient.test_messages import GSM7
from tests.reminders.conftest import at

NY, LA = "America/New_York", "America/Los_Angeles"
#: Mon 1 Jun 2026, 10:00 in New York.
START = at(NY, 2026, 6, 1, 10, 0)


@pytest.fixture
def clock(app: object) -> Iterator[ManualClock]:
    with use_clock(ManualClock(START.astimezone(UTC))) as manual:
        yield manual  # type: ignore[misc]


@dataclass
class Visit:
    appointment: Appointment
    patient: Patient
    slot: Slot
    later: Slot  # another open slot of the same service


def book(
    local_start: datetime,
    *,
    patient: Patient | None = None,
    source: AppointmentSource = AppointmentSource.STAFF,
) -> Visit:
    """Book a 45-minute visit at a New York clinic through the one booking path."""
    clinic = f.location(name="Fifth Avenue", timezone=NY, phone="+12125550100")
    doctor = f.practitioner(location=clinic, name="Dr. Maya Lee")
    service = f.service(name="Lip filler", duration_minutes=45)
    slot = f.slot(start_at=local_start, practitioner=doctor, service=service)
    later = f.slot(start_at=local_start + timedelta(days=2), practitioner=doctor, service=service)
    patient = patient or f.patient(name="Ana Alvarez", timezone=LA)
    appointment = booking.book_slot(slot.id, patient, source=source, actor=SYSTEM)
    db.session.commit()
    return Visit(appointment, patient, slot, later)


def due(visit: Visit) -> list[tuple[int, str, datetime]]:
    return [(r.lead_hours, r.status.value, r.due_at) for r in reminders_for(visit.appointment.id)]


def texts(to: str | None = None) -> list[str]:
    query = sa.select(OutboxMessage).where(OutboxMessage.channel == Channel.SMS)
    return [
        m.body for m in db.session.scalars(query.order_by(OutboxMessage.id)) if not to or m.to == to
    ]


def reminder_texts() -> list[str]:
    return [t for t in texts() if "Reminder" in t]


def run_until(clock: ManualClock, instant: datetime) -> dict[str, int]:
    """Move the clock to ``instant``, run the sweep as cron would, send what is queued."""
    clock.set(instant.astimezone(UTC))
    tally = dispatch_reminders()
    drain()
    return tally


def test_booking_plans_the_3_day_and_1_day_reminders(clock: ManualClock) -> None:
    visit = book(at(NY, 2026, 6, 12, 13, 0))  # Fri 13:00 ET = 10:00 PT for Ana

    assert due(visit) == [
        (72, "scheduled", at(LA, 2026, 6, 9, 10, 0)),
        (24, "scheduled", at(LA, 2026, 6, 11, 10, 0)),
    ]


def test_reminders_go_at_their_time_with_the_patients_time_and_the_clinics(
    clock: ManualClock,
) -> None:
    visit = book(at(NY, 2026, 6, 12, 13, 0))

    assert run_until(clock, at(LA, 2026, 6, 9, 9, 59)) == {}
    assert reminder_texts() == []
    assert run_until(clock, at(LA, 2026, 6, 9, 10, 0)) == {"sent": 1}
    [text] = reminder_texts()

    assert "Fri Jun 12 10:00AM PDT" in text and "(1:00 PM EDT clinic time)" in text
    assert "Reply C to confirm, R to reschedule." in text
    assert "CANCEL" not in text.upper().replace("CANCELL", "")
    link = re.search(r"http://portal\.test/a/\S+", text)
    assert link is not None and text.endswith(link.group(0))
    assert len(text) <= 306 and set(text) <= GSM7
    assert due(visit)[0][1] == "sent"


def test_a_confirmed_visit_is_not_asked_to_confirm_again(clock: ManualClock) -> None:
    book(at(NY, 2026, 6, 12, 13, 0), source=AppointmentSource.WAITLIST)  # confirmed at booking
    run_until(clock, at(LA, 2026, 6, 9, 10, 0))
    [text] = reminder_texts()
    assert "Reply R to reschedule." in text and "Reply C" not in text


def test_long_names_still_fit_two_segments(clock: ManualClock) -> None:
    patient = f.patient(name="Alexandrina Montgomery-Featherstonehaugh", timezone=LA)
    visit = book(at(NY, 2026, 6, 12, 13, 0), patient=patient)
    visit.slot.service.name = "HydraFacial Deluxe Signature"
    visit.slot.practitioner.name = "Dr. Evangeline Worthington"
    visit.slot.location.name = "Fifth Avenue Flagship"
    db.session.commit()

    run_until(clock, at(LA, 2026, 6, 9, 10, 0))
    notification = db.session.scalars(
        sa.select(Notification).where(Notification.purpose == Purpose.REMINDER)
    ).one()
    body = render_message(notification, Channel.SMS).body
    assert len(body) <= 306, len(body)


def test_every_channel_renders_a_reminder(clock: ManualClock) -> None:
    book(at(NY, 2026, 6, 12, 13, 0))
    run_until(clock, at(LA, 2026, 6, 9, 10, 0))
    notification = db.session.scalars(
        sa.select(Notification).where(Notification.purpose == Purpose.REMINDER)
    ).one()
    email = render_message(notification, Channel.EMAIL)
    voice = render_message(notification, Channel.VOICE)
    assert email.subject and "reminder" in email.subject and "Fri Jun 12" in email.subject
    assert "1:00 PM EDT at the clinic" in email.body and email.links
    assert "http" not in voice.body and "reminder" in voice.body


def test_a_cancelled_appointment_sends_no_reminder(clock: ManualClock) -> None:
    visit = book(at(NY, 2026, 6, 12, 13, 0))
    release_slot(visit.slot.id, SYSTEM, reason="the practitioner is away")
    db.session.commit()

    assert [status for _, status, _ in due(visit)] == ["cancelled", "cancelled"]
    run_until(clock, at(LA, 2026, 6, 12, 9, 0))
    assert reminder_texts() == []


def test_a_reminder_already_queued_is_dropped_when_the_visit_is_cancelled(
    clock: ManualClock,
) -> None:
    visit = book(at(NY, 2026, 6, 12, 13, 0))
    clock.set(at(LA, 2026, 6, 9, 10, 0).astimezone(UTC))
    dispatch_reminders()  # the reminder is queued; its text has not gone yet
    release_slot(visit.slot.id, SYSTEM)
    db.session.commit()

    drain()
    notification = db.session.scalars(
        sa.select(Notification).where(Notification.purpose == Purpose.REMINDER)
    ).one()
    assert reminder_texts() == []
    assert notification.status == NotificationStatus.CANCELLED


def test_a_moved_appointment_sends_only_reminders_for_its_new_time(clock: ManualClock) -> None:
    visit = book(at(NY, 2026, 6, 12, 13, 0))
    reschedule_appointment(visit.appointment.id, visit.later.id, Actor.patient(visit.patient.id))
    db.session.commit()

    assert [(lead, status) for lead, status, _ in due(visit)] == [
        (72, "cancelled"),
        (24, "cancelled"),
        (72, "scheduled"),
        (24, "scheduled"),
    ]
    for day in (9, 10, 11, 12, 13):
        run_until(clock, at(LA, 2026, 6, day, 12, 0))
    sent = reminder_texts()
    assert len(sent) == 2
    assert all("Sun Jun 14 10:00AM PDT" in text for text in sent)
    moved = [t for t in texts() if "Moved" in t]
    assert len(moved) == 1 and "(was Fri Jun 12 10:00AM PDT)" in moved[0]


def test_a_stale_reminder_for_a_moved_visit_is_dropped_at_send_time(clock: ManualClock) -> None:
    visit = book(at(NY, 2026, 6, 12, 13, 0))
    [three_day, _] = reminders_for(visit.appointment.id)
    # Someone moved the slot itself without telling the reminders (defence in depth).
    visit.slot.start_at += timedelta(hours=3)
    visit.slot.end_at += timedelta(hours=3)
    db.session.commit()

    clock.set(three_day.due_at)
    assert send_reminder(three_day.id) == "cancelled"


def test_found_late_only_the_latest_reminder_goes(clock: ManualClock) -> None:
    visit = book(at(NY, 2026, 6, 12, 13, 0))
    # The workers were down for days: both reminders are overdue when the sweep runs.
    tally = run_until(clock, at(LA, 2026, 6, 11, 15, 0))

    assert tally == {"skipped": 1, "sent": 1}
    assert [(lead, status) for lead, status, _ in due(visit)] == [(72, "skipped"), (24, "sent")]
    assert len(reminder_texts()) == 1


def test_found_late_in_quiet_hours_waits_for_morning_or_is_dropped(clock: ManualClock) -> None:
    visit = book(at(NY, 2026, 6, 12, 13, 0))  # 10:00 PT for Ana
    [_, one_day] = reminders_for(visit.appointment.id)
    clock.set(at(LA, 2026, 6, 11, 23, 0).astimezone(UTC))  # found at 23:00 her time

    assert send_reminder(one_day.id) == "deferred"
    db.session.commit()
    assert one_day.due_at == at(LA, 2026, 6, 12, 8, 0)  # 2 h before: still of use

    clock.set(at(LA, 2026, 6, 12, 8, 0).astimezone(UTC))
    assert send_reminder(one_day.id) == "sent"


def test_frequency_caps_skip_a_second_non_urgent_message_the_same_day(clock: ManualClock) -> None:
    patient = f.patient(name="Ana Alvarez", timezone=NY)
    first = book(at(NY, 2026, 6, 12, 13, 0), patient=patient)
    second = book(at(NY, 2026, 6, 10, 13, 30), patient=patient)  # its 1-day = first's 3-day day
    run_until(clock, at(NY, 2026, 6, 7, 13, 30))  # the second visit's 3-day reminder
    run_until(clock, at(NY, 2026, 6, 9, 13, 0))  # the first visit's 3-day reminder
    run_until(clock, at(NY, 2026, 6, 9, 13, 30))  # the second's 1-day: same day, capped

    statuses = {
        (r.appointment_id, r.lead_hours): r for r in db.session.scalars(sa.select(Reminder))
    }
    assert statuses[(first.appointment.id, 72)].status == ReminderStatus.SENT
    capped = statuses[(second.appointment.id, 24)]
    assert capped.status == ReminderStatus.SKIPPED
    assert capped.note == "at most 1 non-urgent message(s) a day"


def test_cadence_is_configurable_per_category(clock: ManualClock) -> None:
    set_setting("reminder_cadence_hours", {"injectables": [168, 48, 2]})
    visit = book(at(NY, 2026, 6, 12, 13, 0))
    assert [lead for lead, _, _ in due(visit)] == [168, 48, 2]
    assert due(visit)[2][2] == at(NY, 2026, 6, 12, 11, 0)


def test_a_zone_change_replans_the_reminders(clock: ManualClock) -> None:
    from portal.services.patients import set_timezone

    visit = book(at(NY, 2026, 6, 12, 7, 0))  # 04:00 for Ana in LA: reminders the evening before
    assert due(visit)[1][2] == at(LA, 2026, 6, 10, 20, 45)
    set_timezone(visit.patient, NY, actor=Actor.patient(visit.patient.id))
    db.session.commit()

    live = [(lead, when) for lead, status, when in due(visit) if status == "scheduled"]
    assert live == [(72, at(NY, 2026, 6, 8, 20, 45)), (24, at(NY, 2026, 6, 10, 20, 45))]


def test_the_api_shows_the_scheduled_reminders(clock: ManualClock) -> None:
    from portal.web.api.serializers import appointment_json

    visit = book(at(NY, 2026, 6, 12, 13, 0))
    shown = appointment_json(visit.appointment)["reminders"]
    assert shown == [
        {"due_at": "2026-06-09T17:00:00+00:00", "status": "scheduled"},
        {"due_at": "2026-06-11T17:00:00+00:00", "status": "scheduled"},
    ]


def test_dispatch_is_idempotent(clock: ManualClock) -> None:
    book(at(NY, 2026, 6, 12, 13, 0))
    clock.set(at(LA, 2026, 6, 9, 10, 0).astimezone(UTC))
    assert dispatch_reminders() == {"sent": 1}
    assert dispatch_reminders() == {}
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.purpose == Purpose.REMINDER)
        )
        == 1
    )
