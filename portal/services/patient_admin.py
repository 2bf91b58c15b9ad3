"""Staff changes to a patient: contact details, text opt-out, payment tier.

Registration is ``patients.create_patient``; this module edits. Every change is audited
with what it was before (never the phone number or email themselves: those are PHI, the
audit keeps which fields changed). A phone number another patient already has is refused
unless the caller confirms the two really are different people (``allow_duplicate_phone``,
``patients.DuplicatePhone``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from portal.models import Charge, Location, Patient
from portal.models.enums import Channel, ChargeStatus, NoShowTier, TimezoneSource
from portal.services import ledger
from portal.services.audit import Action, Actor, record
from portal.services.errors import DomainError
from portal.services.notify.policy import unusable_reason
from portal.services.patients import (
    InvalidPhone,
    clean_email,
    clean_name,
    refuse_duplicate_phone,
    resolve_timezone,
    set_timezone,
)
from portal.services.phones import parse_phone
from portal.services.tiers import patient_tier

MAX_REASON = 300


@dataclass(frozen=True)
class ContactChange:
    """The fields of the patient form."""

    name: str
    phone: str
    email: str | None
    timezone: str | None  # None or blank: detect from the phone, else the location's
    home_location: Location | None


def update_patient(
    patient: Patient, change: ContactChange, actor: Actor, *, allow_duplicate_phone: bool = False
) -> list[str]:
    """Apply the form's contact details; return the names of the fields that changed.

    The time zone goes through ``patients.set_timezone`` (its own audit event), so a
    new zone replans the patient's upcoming reminders like any other zone change.
    """
    name = clean_name(change.name)
    parsed = parse_phone(change.phone)
    if not parsed.valid:
        raise InvalidPhone(parsed.message or None, details={"reason": parsed.reason})
    email = clean_email(change.email)
    if not allow_duplicate_phone and parsed.e164 != patient.phone_e164:
        refuse_duplicate_phone(parsed.e164, patient.id)
    resolve_timezone(change.timezone, parsed.e164, change.home_location)  # refuse a bad zone first
    new = {
        "name": name,
        "phone_e164": parsed.e164,
        "phone_raw": change.phone.strip(),
        "email": email,
        "home_location_id": change.home_location.id if change.home_location else None,
    }
    changed = [key for key, value in new.items() if getattr(patient, key) != value]
    if changed:
        before = {k: getattr(patient, k) for k in changed if k in _SAFE_TO_AUDIT}
        for key in changed:
            setattr(patient, key, new[key])
        patient.home_location = change.home_location
        after = {k: getattr(patient, k) for k in changed if k in _SAFE_TO_AUDIT}
        record(
            actor, Action.PATIENT_UPDATED, patient, before=before, after=after | {"fields": changed}
        )
    zone_before = (patient.timezone, patient.timezone_source)
    set_timezone(patient, change.timezone, actor=actor)
    if (patient.timezone, patient.timezone_source) != zone_before:
        changed.append("timezone")
    return changed


#: Fields whose values may be kept in the audit trail (the rest are named, not copied).
_SAFE_TO_AUDIT = frozenset({"home_location_id"})


def set_sms_opt_out(patient: Patient, opted_out: bool, note: str, actor: Actor) -> bool:
    """Record that the patient stopped (or, on their request, restarted) texts and calls.

    Returns whether anything changed. Restarting needs a note saying the patient asked.
    """
    note = " ".join(note.split())[:MAX_REASON]
    if patient.sms_opt_out == opted_out:
        return False
    if not opted_out and not note:
        raise DomainError(
            "Say how the patient asked to get texts again (e.g. 'asked at the desk').",
            code="reason_required",
        )
    patient.sms_opt_out = opted_out
    action = Action.PATIENT_SMS_OPT_OUT if opted_out else Action.PATIENT_SMS_OPT_IN
    record(actor, action, patient, before={"sms_opt_out": not opted_out}, after={"note": note})
    return True


class Tier(StrEnum):
    """What staff require of a patient before a booking completes (on top of no-shows)."""

    NONE = "none"
    DEPOSIT = "deposit"
    PREPAYMENT = "prepayment"


TIER_LABELS = {
    Tier.NONE: "Nothing beyond their no-show tier",
    Tier.DEPOSIT: "A deposit before booking",
    Tier.PREPAYMENT: "Prepayment before booking",
}
#: The effective tier (``tiers.patient_tier``) as the pages say it.
EFFECTIVE_LABELS = {
    NoShowTier.NONE: "No payment needed first",
    NoShowTier.DISCOUNT: "No payment needed first (a rebooking discount is on offer)",
    NoShowTier.DEPOSIT: "A deposit before booking",
    NoShowTier.PREPAYMENT: "Prepayment before booking",
}


def staff_requirement(patient: Patient) -> Tier:
    """What staff set for the patient (``tiers.patient_tier`` raises the tier to it)."""
    if patient.prepayment_required:
        return Tier.PREPAYMENT
    if patient.deposit_required:
        return Tier.DEPOSIT
    return Tier.NONE


def tier_of(patient: Patient) -> NoShowTier:
    """The patient's tier now: their recent no-shows, raised by any staff requirement."""
    return patient_tier(patient)


def set_tier(patient: Patient, tier: Tier, reason: str, actor: Actor) -> bool:
    """Set what staff require before the patient's bookings, with a reason (audited).

    Returns False if it was already that. The effective tier never drops below what
    the patient's recent no-shows earn (``tiers.patient_tier``).
    """
    reason = " ".join(reason.split())[:MAX_REASON]
    if not reason:
        raise DomainError("Give a reason for changing the tier.", code="reason_required")
    before = staff_requirement(patient)
    if before == tier:
        return False
    effective_before = tier_of(patient)
    patient.deposit_required = tier == Tier.DEPOSIT
    patient.prepayment_required = tier == Tier.PREPAYMENT
    record(
        actor,
        Action.PATIENT_TIER_CHANGED,
        patient,
        before={"tier": before, "effective": effective_before},
        after={"tier": tier, "effective": tier_of(patient), "reason": reason},
    )
    return True


def timezone_choice(patient: Patient) -> str | None:
    """The zone to show in the form's field: only an explicit one (blank = detect)."""
    return patient.timezone if patient.timezone_source == TimezoneSource.EXPLICIT else None


def charges_for(patient: Patient) -> list[tuple[Charge, ChargeStatus]]:
    """The patient's charges (deposits, prepayments, fees) with their statuses, newest first."""
    return ledger.charges_for_patient(patient.id)


@dataclass(frozen=True)
class ChannelState:
    """Whether one channel can reach the patient, and if not why."""

    channel: str
    usable: bool
    note: str


def channel_states(patient: Patient) -> list[ChannelState]:
    """Texts, calls and email as the notification chain sees them for this patient."""
    states = []
    for channel, label in (
        (Channel.SMS, "Texts"),
        (Channel.VOICE, "Calls"),
        (Channel.EMAIL, "Email"),
    ):
        reason = unusable_reason(channel, patient)
        states.append(ChannelState(label, reason is None, reason or "OK"))
    return states
