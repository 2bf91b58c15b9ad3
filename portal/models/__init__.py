"""All models, importable from one place (Alembic and the app need them all loaded)."""

from portal.models.audit import AuditEvent
from portal.models.billing import Charge, ChargeEntry
from portal.models.booking import Appointment, Offer
from portal.models.messaging import (
    DeliveryEvent,
    Notification,
    NotificationAttempt,
    OutboxMessage,
    OutreachTask,
)
from portal.models.patients import Patient, PatientFlag, WaitlistEntry
from portal.models.reminders import Reminder
from portal.models.scheduling import (
    CancellationPolicy,
    Closure,
    Location,
    OfferPolicy,
    Practitioner,
    Service,
    Setting,
    Slot,
)
from portal.models.staff import ApiToken, StaffUser

__all__ = [
    "ApiToken",
    "Appointment",
    "AuditEvent",
    "CancellationPolicy",
    "Charge",
    "ChargeEntry",
    "Closure",
    "DeliveryEvent",
    "Location",
    "Notification",
    "NotificationAttempt",
    "Offer",
    "OfferPolicy",
    "OutboxMessage",
    "OutreachTask",
    "Patient",
    "PatientFlag",
    "Practitioner",
    "Reminder",
    "Service",
    "Setting",
    "Slot",
    "StaffUser",
    "WaitlistEntry",
]
