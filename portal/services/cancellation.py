"""Cancelling an appointment for its patient: the fee quote, the cancel, what follows.

The rules (SPEC §5), each tier explicit and tested at its edge:

- ``grace``: a waitlist or alternative booking cancelled at most ``grace_minutes`` after
  it was booked (when the policy makes grace free) → free, and the patient rejoins the
  waitlist with the same preferences;
- ``notice``: at least ``notice_hours`` before the start → free;
- ``late``: at least ``full_charge_hours`` but less than ``notice_hours`` → the late fee
  (a percentage of the price, rounded half up, or a fixed amount, never above the price);
- ``full``: less than ``full_charge_hours`` → the full price.

Hours are elapsed time (24 hours across a DST change is 24 real hours, not the same
clock time the day before). The price is the service's, less any rebooking discount.
The quote is recomputed under the slot's lock when the patient confirms; if it moved
(a threshold passed meanwhile), ``QuoteChanged`` carries the new one and nothing is
done. The fee is a ledger charge keyed by the appointment, so a double submit charges
once; with a provider and a saved card it is collected off-session after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Appointment, Charge, WaitlistEntry
from portal.models.enums import (
    ActorType,
    AppointmentSource,
    AppointmentStatus,
    ChargeKind,
    ChargeStatus,
    FeeTier,
    FlagKind,
    PaymentProviderName,
    SlotStatus,
    WaitlistStatus,
)
from portal.queue import schedule
from portal.services import ledger
from portal.services.appointments import AWAITING_ARRIVAL, cancel_appointment
from portal.services.audit import Action, Actor, record
from portal.services.cancellation_policy import Policy, policy_for
from portal.services.errors import Conflict, NotFound
from portal.services.filling import lock_slot, on_slot_opened
from portal.services.flags import raise_flag
from portal.services.money import discounted
from portal.services.settings import settings

#: Bookings the patient made from an offer or its alternatives: these get a grace period.
GRACE_SOURCES = (AppointmentSource.WAITLIST, AppointmentSource.ALTERNATIVE)


@dataclass(frozen=True)
class Quote:
    """What cancelling now would cost, which rule says so, and the moments that matter."""

    tier: FeeTier
    fee_cents: int
    price_cents: int
    policy: Policy
    quoted_at: datetime
    #: The end of the grace period, for bookings that have one.
    grace_ends_at: datetime | None
    free_until: datetime  # start - notice hours
    full_charge_from: datetime  # start - full-charge hours

    @property
    def free(self) -> bool:
        return self.fee_cents == 0


class QuoteChanged(Conflict):
    """The fee moved between the quote and the confirmation: show the new one."""

    default_code = "quote_changed"

    def __init__(self, quote: Quote) -> None:
        super().__init__(
            "The cancellation fee changed since you looked: please check the new amount.",
            details={"fee_cents": quote.fee_cents, "tier": quote.tier.value},
        )
        self.quote = quote


def price_of(appointment: Appointment) -> int:
    """What the appointment costs: the service's price less its rebooking discount."""
    return discounted(appointment.slot.service.price_cents, appointment.discount_percent)


def quote(appointment: Appointment, now: datetime | None = None) -> Quote:
    """Say what cancelling ``appointment`` at ``now`` costs, and under which rule."""
    now = now or now_utc()
    slot = appointment.slot
    policy = policy_for(slot.service.category)
    price = price_of(appointment)
    grace_ends = None
    if appointment.source in GRACE_SOURCES and policy.grace_free:
        grace_ends = appointment.booked_at + timedelta(minutes=policy.grace_minutes)
    free_until = slot.start_at - timedelta(hours=policy.notice_hours)
    full_from = slot.start_at - timedelta(hours=policy.full_charge_hours)
    if grace_ends is not None and now <= grace_ends:
        tier, fee = FeeTier.GRACE, 0
    elif now <= free_until:
        tier, fee = FeeTier.NOTICE, 0
    elif now <= full_from:
        tier, fee = FeeTier.LATE, policy.late_fee.of(price)
    else:
        tier, fee = FeeTier.FULL, price
    return Quote(tier, fee, price, policy, now, grace_ends, free_until, full_from)


@dataclass(frozen=True)
class Cancelled:
    """A cancellation done (or found already done): the fee and its charge, if any."""

    appointment: Appointment
    quote: Quote | None
    charge: Charge | None
    rejoined: bool = False
    already: bool = False


def cancel_for_patient(
    appointment_id: int,
    actor: Actor,
    *,
    reason: str | None = None,
    expected_fee_cents: int | None = None,
    waive_fee: bool = False,
    now: datetime | None = None,
) -> Cancelled:
    """Cancel the appointment on the patient's behalf, charging what the policy says.

    ``expected_fee_cents``: the fee the patient was quoted; if the fee is now different
    ``QuoteChanged`` is raised and nothing changes. ``waive_fee`` (staff or API, audited)
    records the fee and waives it. Cancelling a cancelled appointment returns it as is.
    """
    now = now or now_utc()
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound("No such appointment.", code="unknown_appointment")
    slot = lock_slot(appointment.slot_id)  # slot first, as every booking path does
    db.session.refresh(appointment)
    if appointment.status == AppointmentStatus.CANCELLED:
        charge = fee_charge(appointment.id)
        return Cancelled(appointment, None, charge, already=True)
    if appointment.status not in AWAITING_ARRIVAL:
        raise Conflict(
            f"An appointment that is {appointment.status.value.replace('_', ' ')}"
            " cannot be cancelled.",
            code="not_cancellable",
        )
    if waive_fee and actor.type == ActorType.PATIENT:
        raise Conflict("Only the clinic can waive a cancellation fee.", code="waiver_not_allowed")
    if actor.type == ActorType.PATIENT and now >= slot.start_at:
        raise Conflict(
            "This appointment has already started; please call the clinic.",
            code="appointment_started",
        )
    current = quote(appointment, now)
    if expected_fee_cents is not None and expected_fee_cents != current.fee_cents:
        raise QuoteChanged(current)
    fee = 0 if waive_fee else current.fee_cents
    appointment.cancelled_by_patient = True
    appointment.cancellation_tier = current.tier
    appointment.cancellation_fee_cents = fee
    appointment.grace_cancellation = current.tier == FeeTier.GRACE
    cancel_appointment(
        appointment,
        actor,
        reason=reason,
        now=now,
        context={
            "cancelled_by": "patient",
            "fee_cents": fee,
            "fee_tier": current.tier.value,
            "fee_waived": waive_fee and current.fee_cents > 0,
        },
    )
    charge = _record_fee(appointment, current, actor, waive_fee, now)
    if slot is not None and slot.status == SlotStatus.BOOKED:
        on_slot_opened(slot, actor, now)  # the slot reopens and filling starts after commit
    rejoined = current.tier == FeeTier.GRACE and rejoin_waitlist(appointment, actor, now)
    check_frequent_cancellations(appointment, actor, now)
    return Cancelled(appointment, current, charge, rejoined=rejoined)


def _record_fee(
    appointment: Appointment, current: Quote, actor: Actor, waive: bool, now: datetime
) -> Charge | None:
    if current.fee_cents <= 0:
        return None
    charge = ledger.open_charge(
        patient_id=appointment.patient_id,
        kind=ChargeKind.CANCELLATION_FEE,
        amount_cents=current.fee_cents,
        key=f"cancellation_fee:appointment:{appointment.id}",
        description=f"Cancellation fee ({current.tier.value}) for {appointment.slot.service.name}",
        actor=actor,
        appointment_id=appointment.id,
        now=now,
    )
    if waive:
        ledger.append(
            charge.id,
            ChargeStatus.WAIVED,
            key=f"{charge.idempotency_key}:waived",
            actor=actor,
            provider=PaymentProviderName.DESK,
            note="waived by staff",
            now=now,
        )
        record(actor, Action.APPOINTMENT_FEE_WAIVED, appointment, after={"fee": current.fee_cents})
    else:
        schedule("collect_charge", charge.id)  # off-session, after commit, if a card is saved
    return charge


def fee_charge(appointment_id: int) -> Charge | None:
    """The cancellation fee charged for an appointment, if any (not a second payment of it)."""
    return db.session.scalar(
        sa.select(Charge).where(
            Charge.appointment_id == appointment_id,
            Charge.kind == ChargeKind.CANCELLATION_FEE,
            Charge.duplicate_of_id.is_(None),
        )
    )


def rejoin_waitlist(appointment: Appointment, actor: Actor, now: datetime) -> bool:
    """Reopen the waitlist entry the booking came from, preferences unchanged.

    Nothing happens if the patient has since joined again for that service and place.
    """
    if appointment.waitlist_entry_id is None:
        return False
    entry = db.session.get(WaitlistEntry, appointment.waitlist_entry_id)
    if entry is None or entry.status != WaitlistStatus.BOOKED:
        return False
    other = sa.orm.aliased(WaitlistEntry)
    already_waiting = (
        sa.select(other.id)
        .where(
            other.patient_id == WaitlistEntry.patient_id,
            other.service_id == WaitlistEntry.service_id,
            other.location_id == WaitlistEntry.location_id,
            other.status == WaitlistStatus.ACTIVE,
        )
        .exists()
    )
    reopened = db.session.execute(
        sa.update(WaitlistEntry)
        .where(
            WaitlistEntry.id == entry.id,
            WaitlistEntry.status == WaitlistStatus.BOOKED,
            ~already_waiting,
        )
        .values(status=WaitlistStatus.ACTIVE, closed_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(entry)
    if reopened:
        record(actor, Action.WAITLIST_REJOINED, entry, after={"appointment": appointment.id})
    return bool(reopened)


def cancellation_window(now: datetime) -> tuple[datetime, datetime]:
    """The frequent-canceller window: ``frequent_cancellation_days`` back from ``now``,
    both ends included (the cancellation just made counts)."""
    return now - timedelta(days=settings().frequent_cancellation_days), now


def recent_cancellations(patient_id: int, now: datetime) -> int:
    """The patient's own cancellations inside ``cancellation_window(now)``."""
    start, end = cancellation_window(now)
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Appointment)
        .where(
            Appointment.patient_id == patient_id,
            Appointment.status == AppointmentStatus.CANCELLED,
            Appointment.cancelled_by_patient.is_(True),
            Appointment.cancelled_at >= start,
            Appointment.cancelled_at <= end,
        )
    )


def check_frequent_cancellations(appointment: Appointment, actor: Actor, now: datetime) -> bool:
    """Flag the patient when their cancellations in the window reach the threshold."""
    db.session.flush()
    count = recent_cancellations(appointment.patient_id, now)
    threshold = settings().frequent_cancellation_count
    if count < threshold:
        return False
    days = settings().frequent_cancellation_days
    raise_flag(
        appointment.patient,
        FlagKind.FREQUENT_CANCELLATIONS,
        f"{count} cancellations in the {days} days up to {now:%Y-%m-%d %H:%M} UTC.",
        actor,
    )
    return True
