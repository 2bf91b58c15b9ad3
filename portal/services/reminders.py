"""Appointment reminders: planned when booked, moved with the visit, cancelled with it.

The rules (SPEC §6, issue 10), decided here and nowhere else:

- Cadence: ``reminder_cadence_hours`` per service category (default 72 h and 24 h).
  Whole days are counted on the patient's calendar — same wall-clock time, N days
  earlier, in *their* zone — so a DST change moves the gap, not the time of day.
- Quiet hours: a moment inside the patient's quiet hours moves to the latest allowed
  moment before it (``policy.latest_allowed_before``, with a sending margin). Moving
  is only ever earlier, so a reminder never lands after the visit.
- Booked inside a lead time (the moment is already past at booking, or the visit is
  moved closer than it): no reminder for that lead. The booking's own confirmation
  goes out at once with the same facts (time in both zones, link, C/R replies), so a
  second text saying the same thing would be pointless.
- Replanned for another reason (the patient changed zone): a lead whose moment has
  passed gets one catch-up reminder at once — or when the quiet hours end — unless
  a later lead is still ahead (it will remind them) or the catch-up could only arrive
  within ``reminder_min_notice_minutes`` of the visit (pointless).
- Sending re-checks everything: a cancelled, moved or started visit sends nothing; a
  reminder found late (a worker or Redis was down) goes at once within allowed hours,
  unless a later lead is also due (only the latest goes) or it would be pointless;
  frequency caps apply (``policy.cap_reason``).

Rows flush; the caller commits. A job is enqueued for each due time, and the periodic
``dispatch_reminders`` sweep sends whatever is due whatever became of that job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Patient, Reminder, Slot
from portal.models.enums import AppointmentStatus, NotificationStatus, Purpose, ReminderStatus
from portal.queue import schedule
from portal.services.audit import SYSTEM, Action, Actor, record
from portal.services.notify import queue_notification
from portal.services.notify.policy import (
    first_allowed_from,
    latest_allowed_before,
    patient_region,
)
from portal.services.settings import settings
from portal.services.timezones import shift_local_days

log = logging.getLogger(__name__)

#: Appointments that still expect the patient.
REMINDABLE = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)


def cadence_hours(category: str) -> list[int]:
    """Lead times (hours before the visit) for a service category, longest first."""
    cadence = settings().reminder_cadence_hours
    leads = cadence.get(category, cadence.get("default", []))
    return sorted({int(h) for h in leads if int(h) > 0}, reverse=True)


def nominal_moment(start: datetime, lead_hours: int, tz_name: str) -> datetime:
    """The cadence's moment: whole days on the patient's calendar, else exact hours."""
    if lead_hours % 24 == 0:
        return shift_local_days(start, tz_name, -(lead_hours // 24))
    return start - timedelta(hours=lead_hours)


@dataclass(frozen=True)
class Plan:
    """One lead time's decision: when it goes (``due_at``) or why it will not (``note``)."""

    lead_hours: int
    nominal_at: datetime
    due_at: datetime
    status: ReminderStatus
    note: str = ""


def plan_times(
    start: datetime,
    leads: list[int],
    tz_name: str,
    region: str | None,
    now: datetime,
    *,
    confirmation_sent: bool,
) -> list[Plan]:
    """Decide every lead's reminder for a visit at ``start`` (pure: no database)."""
    current = settings()
    margin = timedelta(minutes=current.reminder_quiet_margin_minutes)
    min_notice = timedelta(minutes=current.reminder_min_notice_minutes)
    plans: list[Plan] = []
    overdue: list[tuple[int, datetime]] = []
    for lead in leads:
        nominal = nominal_moment(start, lead, tz_name)
        due = latest_allowed_before(min(nominal, start), tz_name, region, margin)
        if due > now:
            note = "" if due == nominal else "moved out of the patient's quiet hours"
            plans.append(Plan(lead, nominal, due, ReminderStatus.SCHEDULED, note))
        else:
            overdue.append((lead, nominal))
    ahead = bool(plans)
    for index, (lead, nominal) in enumerate(reversed(overdue)):  # shortest lead first
        if confirmation_sent:
            note = "booked inside this lead time: the booking confirmation told them"
            plans.append(Plan(lead, nominal, nominal, ReminderStatus.SKIPPED, note))
            continue
        if ahead or index > 0:
            note = "superseded by a later reminder"
            plans.append(Plan(lead, nominal, nominal, ReminderStatus.SKIPPED, note))
            continue
        catch_up = first_allowed_from(now, tz_name, region)
        if catch_up > start - min_notice:
            note = "too close to the visit to be of use"
            plans.append(Plan(lead, nominal, catch_up, ReminderStatus.SKIPPED, note))
        else:
            note = "its time had passed: sent at the first allowed moment"
            plans.append(Plan(lead, nominal, catch_up, ReminderStatus.SCHEDULED, note))
    return sorted(plans, key=lambda p: -p.lead_hours)


def plan_reminders(
    appointment: Appointment,
    now: datetime | None = None,
    *,
    confirmation_sent: bool,
    actor: Actor = SYSTEM,
) -> list[Reminder]:
    """(Re)plan the appointment's reminders: live ones are cancelled, new rows written.

    ``confirmation_sent``: the caller is telling the patient about this booking right
    now (a booking or a move), which stands in for any lead time already begun.
    """
    now = now or now_utc()
    cancel_reminders(appointment, now, "replanned", actor=None)
    if appointment.status not in REMINDABLE or appointment.slot.start_at <= now:
        return []
    slot, patient = appointment.slot, appointment.patient
    plans = plan_times(
        slot.start_at,
        cadence_hours(slot.service.category),
        patient.timezone,
        patient_region(patient),
        now,
        confirmation_sent=confirmation_sent,
    )
    rows = []
    for plan in plans:
        row = Reminder(
            appointment_id=appointment.id,
            patient_id=patient.id,
            lead_hours=plan.lead_hours,
            slot_start_at=slot.start_at,
            nominal_at=plan.nominal_at,
            due_at=plan.due_at,
            status=plan.status,
            note=plan.note,
        )
        db.session.add(row)
        rows.append(row)
    db.session.flush()
    for row in rows:
        if row.status == ReminderStatus.SCHEDULED:
            _enqueue(row)
    if rows:
        record(
            actor,
            Action.REMINDERS_PLANNED,
            appointment,
            after={
                "due": [r.due_at for r in rows if r.status == ReminderStatus.SCHEDULED],
                "skipped": {str(r.lead_hours): r.note for r in rows if r.status != "scheduled"},
            },
        )
    return rows


def _enqueue(reminder: Reminder) -> None:
    job_id = f"reminder-{reminder.id}-{int(reminder.due_at.timestamp())}"
    schedule("send_reminder", reminder.id, at=reminder.due_at, job_id=job_id)


def cancel_reminders(
    appointment: Appointment, now: datetime, why: str, *, actor: Actor | None = SYSTEM
) -> int:
    """Cancel the appointment's reminders still waiting to go; returns how many."""
    cancelled = db.session.scalars(
        sa.update(Reminder)
        .where(
            Reminder.appointment_id == appointment.id,
            Reminder.status == ReminderStatus.SCHEDULED,
        )
        .values(status=ReminderStatus.CANCELLED, note=why[:200], updated_at=now)
        .returning(Reminder.id)
        .execution_options(synchronize_session=False)
    ).all()
    if cancelled and actor is not None:
        record(actor, Action.REMINDERS_CANCELLED, appointment, after={"why": why})
    return len(cancelled)


def replan_for_patient(patient: Patient, actor: Actor, now: datetime | None = None) -> int:
    """Replan the reminders of the patient's upcoming visits (their zone changed)."""
    now = now or now_utc()
    upcoming = db.session.scalars(
        sa.select(Appointment)
        .join(Slot, Slot.id == Appointment.slot_id)
        .where(
            Appointment.patient_id == patient.id,
            Appointment.status.in_(REMINDABLE),
            Slot.start_at > now,
        )
        .order_by(Slot.start_at)
    ).all()
    for appointment in upcoming:
        plan_reminders(appointment, now, confirmation_sent=False, actor=actor)
    return len(upcoming)


def reminders_for(appointment_id: int) -> list[Reminder]:
    """The appointment's reminders, in the order they go."""
    return list(
        db.session.scalars(
            sa.select(Reminder)
            .where(Reminder.appointment_id == appointment_id)
            .order_by(Reminder.due_at, Reminder.id)
        )
    )


def reminders_by_appointment(patient_id: int) -> dict[int, list[Reminder]]:
    """A patient's reminders by appointment id (staff see when each goes or why not)."""
    found: dict[int, list[Reminder]] = {}
    for reminder in db.session.scalars(
        sa.select(Reminder)
        .where(Reminder.patient_id == patient_id)
        .order_by(Reminder.due_at, Reminder.id)
    ):
        found.setdefault(reminder.appointment_id, []).append(reminder)
    return found


def due_reminder_ids(now: datetime, limit: int = 500) -> list[int]:
    """Scheduled reminders whose time has come (for the sweep)."""
    return list(
        db.session.scalars(
            sa.select(Reminder.id)
            .where(Reminder.status == ReminderStatus.SCHEDULED, Reminder.due_at <= now)
            .order_by(Reminder.due_at)
            .limit(limit)
        )
    )


def send_reminder(reminder_id: int, now: datetime | None = None) -> str:
    """Send one due reminder, or say why not (flushes; the caller commits).

    Safe to run twice or concurrently: the row is locked (a second caller skips it)
    and only a ``scheduled`` reminder is acted on.
    """
    now = now or now_utc()
    reminder = db.session.scalar(
        sa.select(Reminder)
        .where(Reminder.id == reminder_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if reminder is None or reminder.status != ReminderStatus.SCHEDULED:
        return "not scheduled"
    if reminder.due_at > now:
        return "not due"
    appointment = reminder.appointment
    slot, patient = appointment.slot, db.session.get(Patient, reminder.patient_id)
    if appointment.status not in REMINDABLE or slot.start_at != reminder.slot_start_at:
        return _close(reminder, ReminderStatus.CANCELLED, "the visit was cancelled or moved", now)
    min_notice = timedelta(minutes=settings().reminder_min_notice_minutes)
    if _later_lead_due(reminder, now):
        return _close(reminder, ReminderStatus.SKIPPED, "superseded by a later reminder", now)
    when = first_allowed_from(now, patient.timezone, patient_region(patient))
    if when > slot.start_at - min_notice:
        return _close(reminder, ReminderStatus.SKIPPED, "too close to the visit to be of use", now)
    if when > now:  # found late, inside the quiet hours: wait for them to end
        reminder.due_at = when
        reminder.note = "found during quiet hours: waits for them to end"
        _enqueue(reminder)
        return "deferred"
    notification = queue_notification(
        patient,
        Purpose.REMINDER,
        f"reminder:{reminder.id}",
        appointment_id=appointment.id,
        context={"lead_hours": reminder.lead_hours, "slot_start_at": slot.start_at.isoformat()},
        now=now,
    )
    if notification is None:  # queued before (a crash after the insert): it stands
        return _close(reminder, ReminderStatus.SENT, "", now)
    reminder.notification_id = notification.id
    if notification.status == NotificationStatus.CANCELLED:
        reason = notification.attempts[0].failure_reason if notification.attempts else "capped"
        return _close(reminder, ReminderStatus.SKIPPED, reason or "capped", now)
    return _close(reminder, ReminderStatus.SENT, reminder.note, now)


def _later_lead_due(reminder: Reminder, now: datetime) -> bool:
    """Another, shorter-lead reminder of the same visit is due too: only it should go."""
    return bool(
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Reminder)
            .where(
                Reminder.appointment_id == reminder.appointment_id,
                Reminder.status == ReminderStatus.SCHEDULED,
                Reminder.lead_hours < reminder.lead_hours,
                Reminder.due_at <= now,
            )
        )
    )


def _close(reminder: Reminder, status: ReminderStatus, note: str, now: datetime) -> str:
    reminder.status = status
    reminder.note = note[:200]
    if status == ReminderStatus.SENT:
        reminder.sent_at = now
    db.session.flush()
    action = Action.REMINDER_SENT if status == ReminderStatus.SENT else Action.REMINDER_DROPPED
    record(SYSTEM, action, reminder, after={"status": status, "note": reminder.note})
    log.info("reminder %s: %s %s", reminder.id, status.value, reminder.note)
    return status.value
