"""The rules that decide whether and when a channel may carry a message.

Pure reads: which channels can reach a patient at all, quiet hours in the patient's
own zone, and the per-purpose daily cap. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from portal.db import db
from portal.models import Notification, Patient
from portal.models.enums import Channel, NotificationStatus, Purpose
from portal.services.settings import settings
from portal.services.timezones import local_day_bounds, parse_hhmm, to_local, zone

#: The order channels are tried in; ``manual`` is the outreach queue.
CHAIN: tuple[Channel, ...] = (Channel.SMS, Channel.EMAIL, Channel.VOICE, Channel.MANUAL)

#: Channels that ring or buzz a phone: these respect quiet hours.
PHONE_CHANNELS = frozenset({Channel.SMS, Channel.VOICE})

#: Reasons a channel is skipped for a patient whose number failed validation.
INVALID_PHONE = "no valid phone number"


def unusable_reason(channel: Channel, patient: Patient) -> str | None:
    """Why ``channel`` cannot reach ``patient`` at all (None when it can).

    Opted-out numbers get neither texts nor calls (SPEC §4): the patient asked us to
    stop using that number.
    """
    if channel in PHONE_CHANNELS:
        if not patient.phone_e164:
            return INVALID_PHONE
        if patient.sms_opt_out:
            return "patient opted out (STOP)"
    elif channel == Channel.EMAIL and not patient.email:
        return "no email address"
    return None


def channels_after(after: Channel | None) -> tuple[Channel, ...]:
    """Return the channels that follow ``after`` in the chain (all of them for None)."""
    return CHAIN if after is None else CHAIN[CHAIN.index(after) + 1 :]


def quiet_until(now: datetime, tz_name: str) -> datetime | None:
    """Return when the quiet hours in ``tz_name`` end, or None if ``now`` is not in them."""
    hours = settings().quiet_hours
    start, end = parse_hhmm(hours["start"]), parse_hhmm(hours["end"])
    if start == end:
        return None
    local = to_local(now, tz_name)
    clock = local.time().replace(tzinfo=None)
    if start > end:  # wraps midnight, e.g. 21:00-08:00
        if clock >= start:
            return _local_instant(local.date() + timedelta(days=1), end, tz_name)
        if clock < end:
            return _local_instant(local.date(), end, tz_name)
        return None
    if start <= clock < end:
        return _local_instant(local.date(), end, tz_name)
    return None


def _local_instant(day: date, clock: time, tz_name: str) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone(tz_name)).astimezone(UTC)


@dataclass(frozen=True)
class QuietHours:
    """A phone channel inside the patient's quiet hours: skip it now, or wait ``until``."""

    skip: bool
    until: datetime


QUIET_SKIP_REASON = "quiet hours in the patient's zone"


def quiet_hours(
    channel: Channel, purpose: Purpose, tz_name: str, now: datetime
) -> QuietHours | None:
    """The quiet-hours decision for one message on one channel; None means send now.

    Texts and calls wait for the end of the patient's quiet hours, except purposes that
    cannot wait (an offer's window is short): those skip to the next channel (email).
    """
    if channel not in PHONE_CHANNELS:
        return None
    until = quiet_until(now, tz_name)
    if until is None:
        return None
    return QuietHours(skip=escalates_in_quiet_hours(purpose), until=until)


def escalates_in_quiet_hours(purpose: Purpose) -> bool:
    """Time-sensitive purposes skip phone channels at night instead of waiting."""
    return purpose.value in set(settings().quiet_hours_escalate)


def daily_cap(purpose: Purpose) -> int:
    """Return how many messages of ``purpose`` a patient may receive per local day."""
    caps = settings().daily_purpose_cap
    return int(caps.get(purpose.value, caps.get("default", 5)))


#: Messages whose number is limited where their cause is made, never here: offers are
#: capped by matching (``daily_offer_cap``) before the offer exists, and capping the
#: message instead would leave a live offer that its patient was never told about.
UNCAPPED = frozenset({Purpose.OFFER})


def over_daily_cap(patient: Patient, purpose: Purpose, now: datetime) -> bool:
    """Whether ``patient`` already had today's allowance of ``purpose`` messages."""
    if purpose in UNCAPPED:
        return False
    start, end = local_day_bounds(to_local(now, patient.timezone).date(), patient.timezone)
    sent_today = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(
            Notification.patient_id == patient.id,
            Notification.purpose == purpose,
            Notification.status != NotificationStatus.CANCELLED,
            Notification.created_at >= start,
            Notification.created_at < end,
        )
    )
    return (sent_today or 0) >= daily_cap(purpose)


def receipt_timeout(channel: Channel) -> timedelta:
    """How long to wait for a delivery receipt on ``channel``."""
    minutes = settings().receipt_timeout_minutes
    return timedelta(minutes=float(minutes.get(channel.value, 10)))
