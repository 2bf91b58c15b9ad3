"""Paged lists for the practice's scheduling system: slots and appointments by filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from portal.db import db
from portal.models import Appointment, Slot
from portal.models.enums import AppointmentStatus, SlotStatus
from portal.services.errors import DomainError


@dataclass(frozen=True)
class Page:
    items: list[Any]
    page: int
    per_page: int
    total: int


def _range(
    query: sa.Select, column: Any, start: datetime | None, end: datetime | None
) -> sa.Select:
    if start is not None and end is not None and end <= start:
        raise DomainError("`to` must be after `from`.", code="invalid_range")
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


def _page(query: sa.Select, page: int, per_page: int) -> Page:
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    )
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return Page(items, page, per_page, total or 0)


def slots_page(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    status: SlotStatus | None = None,
    practitioner_id: int | None = None,
    location_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """Slots starting in [start, end), optionally by status, practitioner and location."""
    query = _range(sa.select(Slot), Slot.start_at, start, end)
    if status is not None:
        query = query.where(Slot.status == status)
    if practitioner_id is not None:
        query = query.where(Slot.practitioner_id == practitioner_id)
    if location_id is not None:
        query = query.where(Slot.location_id == location_id)
    return _page(query.order_by(Slot.start_at, Slot.id), page, per_page)


def appointments_page(
    *,
    patient_id: int | None = None,
    slot_id: int | None = None,
    status: AppointmentStatus | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """Appointments by patient, slot and status, whose slot starts in [start, end)."""
    query = sa.select(Appointment).join(Slot, Slot.id == Appointment.slot_id)
    query = _range(query, Slot.start_at, start, end)
    if patient_id is not None:
        query = query.where(Appointment.patient_id == patient_id)
    if slot_id is not None:
        query = query.where(Appointment.slot_id == slot_id)
    if status is not None:
        query = query.where(Appointment.status == status)
    return _page(query.order_by(Slot.start_at, Appointment.id), page, per_page)
