"""Releasing a slot: its booking or hold ends and the waitlist is asked (SPEC §3.1).

Staff, the API and (later) cancellations all release through ``release_slot``. Under
the slot's row lock — read fresh, never from the session's earlier copy — the live
appointment is cancelled (the patient is told), a hold is ended, and the slot reopens
with filling scheduled after commit. A slot that is already open only has its filling
restarted, so two releases at once, or a release racing a booking, leave the slot
either booked with its appointment or open without one.
"""

from __future__ import annotations

from datetime import datetime

from portal.db import now_utc
from portal.models import Slot
from portal.models.enums import AppointmentStatus, SlotStatus
from portal.services import holds
from portal.services.appointments import active_appointment, cancel_appointment
from portal.services.audit import Actor
from portal.services.errors import Conflict, NotFound
from portal.services.filling import lock_slot, on_slot_opened, schedule_fill

#: A visit under way (or done) keeps its slot: releasing it would cancel a visit that
#: happened and offer the time to someone else.
ARRIVED = (AppointmentStatus.CHECKED_IN, AppointmentStatus.COMPLETED)


def release_slot(
    slot_id: int,
    actor: Actor,
    *,
    reason: str | None = None,
    only_booked: bool = False,
    now: datetime | None = None,
) -> Slot:
    """Cancel the slot's booking (or hold), reopen it and start filling it; return it.

    ``only_booked`` refuses anything but a booked slot (the staff "Release" button means
    "cancel this booking"; the API also reopens closed slots and restarts filling).
    """
    now = now or now_utc()
    slot = lock_slot(slot_id)
    if slot is None:
        raise NotFound("No such slot.", code="unknown_slot")
    if only_booked and slot.status != SlotStatus.BOOKED:
        raise Conflict("Only a booked slot can be released.", code="slot_not_booked")
    appointment = active_appointment(slot.id)
    if appointment is not None and appointment.status in ARRIVED:
        raise Conflict(
            "The patient has checked in: this slot is in use and cannot be released.",
            code="slot_in_use",
        )
    if appointment is not None:
        cancel_appointment(appointment, actor, reason=reason, now=now)
    if slot.status == SlotStatus.HELD:
        holds.end_hold(slot, actor, now, why="released")
    elif slot.status == SlotStatus.OPEN and appointment is None:
        slot.fill_exhausted_at = None  # already open: just ask the waitlist again
        schedule_fill(slot.id)
        return slot
    on_slot_opened(slot, actor, now)
    return slot
