"""What happens at a location on one local day: slots, bookings and things to follow up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from portal.db import db, now_utc
from portal.models import (
    Appointment,
    Location,
    Offer,
    OutreachTask,
    Patient,
    PatientFlag,
    Practitioner,
    Service,
    Slot,
)
from portal.models.enums import INACTIVE_APPOINTMENT_STATUSES, AppointmentStatus, SlotStatus
from portal.services.timezones import local_day_bounds


@dataclass(frozen=True)
class DaySlot:
    """One slot as the day view shows it; ``patient_name`` only for booked or held slots."""

    slot_id: int
    start_at: datetime
    end_at: datetime
    status: SlotStatus
    practitioner_name: str
    service_name: str
    price_cents: int = 0
    current_wave: int = 0
    fill_exhausted: bool = False
    #: Why filling stopped: waiting patients left out, per ``matching.Exclusion``.
    fill_exhausted_reasons: dict[str, int] | None = None
    appointment_id: int | None = None
    appointment_status: AppointmentStatus | None = None
    patient_name: str | None = None


@dataclass(frozen=True)
class LocationDay:
    """A location's slots on one local day, in start order."""

    location: Location
    day: date
    slots: list[DaySlot] = field(default_factory=list)

    @property
    def timezone(self) -> str:
        return self.location.timezone

    @property
    def counts(self) -> Counter[SlotStatus]:
        """Return how many slots are in each status (missing statuses count 0)."""
        return Counter(s.status for s in self.slots)

    @property
    def noon_utc(self) -> datetime:
        """Midday of the local day, to name the zone ("PST") the day is mostly in."""
        zone = ZoneInfo(self.timezone)
        return datetime.combine(self.day, time(12), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Attention:
    """Open work that needs a person: manual outreach tasks and unresolved patient flags."""

    open_outreach_tasks: int
    open_patient_flags: int
    #: Appointments marked no-shows in the last 24 hours (every one alerts staff).
    recent_no_shows: int = 0


def local_today(timezone: str, now: datetime | None = None) -> date:
    """Return the calendar date it is now in ``timezone``."""
    return (now or now_utc()).astimezone(ZoneInfo(timezone)).date()


def _day_slots(*where: sa.ColumnElement[bool]) -> list[DaySlot]:
    """Slots matching ``where`` as day-view rows, in start order (one query)."""
    booked_patient = aliased(Patient)
    held_patient = aliased(Patient)
    stmt = (
        sa.select(
            Slot.id,
            Slot.start_at,
            Slot.end_at,
            Slot.status,
            Practitioner.name,
            Service.name,
            Service.price_cents,
            Slot.current_wave,
            Slot.fill_exhausted_at,
            Slot.fill_exhausted_reasons,
            Appointment.id,
            Appointment.status,
            booked_patient.name,
            held_patient.name,
        )
        .join(Practitioner, Practitioner.id == Slot.practitioner_id)
        .join(Service, Service.id == Slot.service_id)
        # At most one live appointment per slot (a partial unique index), so no duplicates.
        .outerjoin(
            Appointment,
            sa.and_(
                Appointment.slot_id == Slot.id,
                Appointment.status.not_in(INACTIVE_APPOINTMENT_STATUSES),
            ),
        )
        .outerjoin(booked_patient, booked_patient.id == Appointment.patient_id)
        .outerjoin(Offer, Offer.id == Slot.hold_offer_id)
        .outerjoin(held_patient, held_patient.id == Offer.patient_id)
        .where(*where)
        .order_by(Slot.start_at, Practitioner.name, Slot.id)
    )
    return [
        DaySlot(
            slot_id=slot_id,
            start_at=start_at,
            end_at=end_at,
            status=status,
            practitioner_name=practitioner,
            service_name=service,
            price_cents=price_cents,
            current_wave=current_wave,
            fill_exhausted=exhausted_at is not None,
            fill_exhausted_reasons=exhausted_reasons,
            appointment_id=appointment_id,
            appointment_status=appointment_status,
            patient_name=booked_name or (held_name if status == SlotStatus.HELD else None),
        )
        for (
            slot_id,
            start_at,
            end_at,
            status,
            practitioner,
            service,
            price_cents,
            current_wave,
            exhausted_at,
            exhausted_reasons,
            appointment_id,
            appointment_status,
            booked_name,
            held_name,
        ) in db.session.execute(stmt)
    ]


def slots_for_local_day(location: Location, day: date) -> list[DaySlot]:
    """Return the location's slots starting on ``day`` in the location's own time zone."""
    start, end = local_day_bounds(day, location.timezone)
    return _day_slots(Slot.location_id == location.id, Slot.start_at >= start, Slot.start_at < end)


def open_slots_between(location: Location, start: datetime, end: datetime) -> list[DaySlot]:
    """The location's open slots starting in [start, end), as day-view rows."""
    return _day_slots(
        Slot.location_id == location.id,
        Slot.status == SlotStatus.OPEN,
        Slot.start_at >= start,
        Slot.start_at < end,
    )


def day_slot(slot_id: int) -> DaySlot | None:
    """Return one slot as a day-view row (to re-render just that row)."""
    rows = _day_slots(Slot.id == slot_id)
    return rows[0] if rows else None


def today_at_locations(now: datetime | None = None) -> list[LocationDay]:
    """Return each location's slots for its own current local day, locations by name."""
    now = now or now_utc()
    locations = db.session.scalars(sa.select(Location).order_by(Location.name, Location.id))
    days = []
    for location in locations:
        day = local_today(location.timezone, now)
        days.append(LocationDay(location, day, slots_for_local_day(location, day)))
    return days


def attention_counts() -> Attention:
    """Count open outreach tasks and unresolved patient flags."""
    tasks = (
        sa.select(sa.func.count())
        .select_from(OutreachTask)
        .where(OutreachTask.completed_at.is_(None))
    )
    flags = (
        sa.select(sa.func.count()).select_from(PatientFlag).where(PatientFlag.resolved_at.is_(None))
    )
    no_shows = (
        sa.select(sa.func.count())
        .select_from(Appointment)
        .where(
            Appointment.status == AppointmentStatus.NO_SHOW,
            Appointment.no_show_at >= now_utc() - timedelta(hours=24),
        )
    )
    return Attention(
        open_outreach_tasks=db.session.scalar(tasks) or 0,
        open_patient_flags=db.session.scalar(flags) or 0,
        recent_no_shows=db.session.scalar(no_shows) or 0,
    )
