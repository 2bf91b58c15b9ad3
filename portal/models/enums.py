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


class WaitlistStatus(StrEnum):
    ACTIVE = "active"
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
    REACHED_ACCEPTED = "reached_accepted"
    REACHED_DECLINED = "reached_declined"
    LEFT_MESSAGE = "left_message"
    NOT_REACHED = "not_reached"
    WRONG_NUMBER = "wrong_number"


class ChargeKind(StrEnum):
    CANCELLATION_FEE = "cancellation_fee"
    DEPOSIT = "deposit"
    PREPAYMENT = "prepayment"


class ChargeStatus(StrEnum):
    PENDING = "pending"
    COLLECTED = "collected"
    FAILED = "failed"
    WAIVED = "waived"
    REFUNDED = "refunded"


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
