"""Status and kind enumerations, stored as VARCHAR with CHECK constraints."""

from __future__ import annotations

from enum import StrEnum


class SlotStatus(StrEnum):
    OPEN = "open"
    HELD = "held"
    BOOKED = "booked"
    CLOSED = "closed"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


#: Appointments in these states no longer occupy their slot.
INACTIVE_APPOINTMENT_STATUSES = (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW)


class AppointmentSource(StrEnum):
    WAITLIST = "waitlist"
    ALTERNATIVE = "alternative"
    STAFF = "staff"
    API = "api"


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class OfferMode(StrEnum):
    SEQUENTIAL = "sequential"
    WAVES = "waves"
    BROADCAST = "broadcast"
    LEARNED = "learned"  # waves ranked and sized by the learned acceptance estimate


class WaitlistStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # staff paused it: kept, not offered, resumable
    BOOKED = "booked"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"


class TimezoneSource(StrEnum):
    EXPLICIT = "explicit"
    PHONE = "phone"
    LOCATION = "location"


class FlagKind(StrEnum):
    FREQUENT_CANCELLATIONS = "frequent_cancellations"
    NO_SHOW = "no_show"
    UNREACHABLE = "unreachable"
    INVALID_PHONE = "invalid_phone"


class ReminderStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its due time
    SENT = "sent"  # handed to the notification chain (see ``notification_id``)
    CANCELLED = "cancelled"  # the appointment was cancelled, moved or replanned
    SKIPPED = "skipped"  # not sent on purpose: pointless, superseded or over a cap (``note``)


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    VOICE = "voice"
    MANUAL = "manual"


class Purpose(StrEnum):
    OFFER = "offer"
    SLOT_FILLED = "slot_filled"
    CONFIRMATION = "confirmation"
    REMINDER = "reminder"
    NO_SHOW = "no_show"
    CANCELLATION = "cancellation"
    HOLD = "hold"
    STAFF_ALERT = "staff_alert"
    REPLY = "reply"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # an attempt is queued or in flight
    DELIVERED = "delivered"
    EXHAUSTED = "exhausted"  # every channel failed; manual outreach task raised
    CANCELLED = "cancelled"  # no longer relevant (e.g. the offer was withdrawn first)


class AttemptStatus(StrEnum):
    QUEUED = "queued"  # row written, not yet claimed by a worker
    SENDING = "sending"  # claimed; the provider call is in flight
    SENT = "sent"  # provider accepted it; waiting for a receipt
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    BOUNCED = "bounced"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CANCELED = "canceled"
    SKIPPED = "skipped"  # channel unusable for this patient (no address, opted out, quiet hours)
    TIMED_OUT = "timed_out"  # no receipt before the deadline: a silent failure


FINAL_ATTEMPT_STATUSES = frozenset(AttemptStatus) - {
    AttemptStatus.QUEUED,
    AttemptStatus.SENDING,
    AttemptStatus.SENT,
}


class OutreachPriority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class OutreachOutcome(StrEnum):
    REACHED = "reached"  # told (a message that asks nothing back)
    REACHED_ACCEPTED = "reached_accepted"
    REACHED_DECLINED = "reached_declined"
    LEFT_MESSAGE = "left_message"
    NOT_REACHED = "not_reached"
    WRONG_NUMBER = "wrong_number"
    NOT_NEEDED = "not_needed"  # closed by itself: the offer it was about has ended


class ChargeKind(StrEnum):
    CANCELLATION_FEE = "cancellation_fee"
    DEPOSIT = "deposit"
    PREPAYMENT = "prepayment"


class ChargeStatus(StrEnum):
    """A ledger entry's status: ``owed`` first, then one of the others."""

    OWED = "owed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # an attempt to collect failed (or its hold lapsed unpaid)
    WAIVED = "waived"
    REFUNDED = "refunded"


class PaymentProviderName(StrEnum):
    DESK = "desk"  # recorded by staff at the front desk (no provider configured)
    STRIPE = "stripe"
    SYSTEM = "system"  # the portal itself (a charge opened, a hold lapsed)


class NoShowTier(StrEnum):
    """What a patient's recent no-shows mean for their next booking (SPEC §5)."""

    NONE = "none"
    DISCOUNT = "discount"  # first: a kind message with a rebooking discount
    DEPOSIT = "deposit"  # second: a deposit to book again
    PREPAYMENT = "prepayment"  # third and later: prepay, and a flag for staff


class FeeTier(StrEnum):
    """Which cancellation rule applied (SPEC §5): each is explicit, none unreachable."""

    GRACE = "grace"  # a waitlist/alternative booking cancelled inside its grace period
    NOTICE = "notice"  # enough notice: free
    LATE = "late"  # between full-charge and notice hours: the late fee
    FULL = "full"  # less than full-charge hours: the full price


class FeeKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


class StaffRole(StrEnum):
    STAFF = "staff"
    ADMIN = "admin"


class ActorType(StrEnum):
    STAFF = "staff"
    PATIENT = "patient"
    SYSTEM = "system"
    WEBHOOK = "webhook"
    API = "api"
