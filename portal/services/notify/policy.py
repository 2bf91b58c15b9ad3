"""The messaging rules, in one place: whether and when a channel may carry a message.

Pure reads: which channels can reach a patient at all (opted-out numbers get no texts
or calls), quiet hours on the recipient's own clock (08:00-21:00 by default, stricter
per zone or US state), the latest allowed moment before a planned send and the first
one after it, and the frequency caps (non-urgent messages at most 1 a day and 3 a week
per patient; offers and replies exempt). Inbound wording (STOP, HELP, …) is read in
``services/replies/keywords.py``. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from portal.db import db
from portal.models import Notification, Patient
from portal.models.enums import Channel, NotificationStatus, Purpose
from portal.services.phones import us_state_for_phone
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


def quiet_window(tz_name: str, region: str | None = None) -> tuple[time, time] | None:
    """The quiet hours (start, end) on the recipient's clock; None when there are none.

    The practice's ``quiet_hours`` apply everywhere; an entry of ``quiet_hours_overrides``
    for the recipient's zone or US state (e.g. ``{"FL": {"start": "20:00", ...}}``) can
    only make them stricter: the earlier start and the later end win.
    """
    current = settings()
    windows = [_parse_window(current.quiet_hours)]
    for key in (tz_name, region):
        if key and key in current.quiet_hours_overrides:
            windows.append(_parse_window(current.quiet_hours_overrides[key]))
    windows = [w for w in windows if w is not None]
    if not windows:
        return None
    if len(windows) == 1 or not all(start > end for start, end in windows):
        return windows[-1]  # non-wrapping windows cannot be merged: the override stands
    return min(start for start, _ in windows), max(end for _, end in windows)


def _parse_window(hours: dict[str, str]) -> tuple[time, time] | None:
    start, end = parse_hhmm(hours["start"]), parse_hhmm(hours["end"])
    return None if start == end else (start, end)


def quiet_until(now: datetime, tz_name: str, region: str | None = None) -> datetime | None:
    """Return when the quiet hours in ``tz_name`` end, or None if ``now`` is not in them."""
    window = quiet_window(tz_name, region)
    if window is None:
        return None
    start, end = window
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
    """``clock`` on ``day`` in ``tz_name`` as UTC; a time a DST gap skips is read forward."""
    return datetime.combine(day, clock, tzinfo=zone(tz_name)).astimezone(UTC)


def first_allowed_from(at: datetime, tz_name: str, region: str | None = None) -> datetime:
    """The first moment from ``at`` when a text may reach the recipient."""
    return quiet_until(at, tz_name, region) or at


def latest_allowed_before(
    at: datetime, tz_name: str, region: str | None = None, margin: timedelta = timedelta(0)
) -> datetime:
    """The latest moment not after ``at`` when a text may go, ``margin`` clear of quiet hours.

    ``at`` itself when it is allowed; otherwise the start of the quiet hours that hold
    it (or begin within ``margin`` after it), less ``margin``, on the recipient's clock.
    """
    window = quiet_window(tz_name, region)
    if window is None:
        return at

    def clear(moment: datetime) -> bool:  # no quiet hours in [moment, moment + margin)
        last = moment + max(margin - timedelta(microseconds=1), timedelta(0))
        return quiet_until(moment, tz_name, region) is None and (
            quiet_until(last, tz_name, region) is None
        )

    if clear(at):
        return at
    local_day = to_local(at, tz_name).date()
    candidates = [
        _local_instant(local_day - timedelta(days=back), window[0], tz_name) - margin
        for back in range(3)
    ]
    return max(c for c in candidates if c <= at and clear(c))


def patient_region(patient: Patient) -> str | None:
    """The US state whose texting rules apply to ``patient`` (by the number's area code)."""
    return us_state_for_phone(patient.phone_e164)


@dataclass(frozen=True)
class QuietHours:
    """A phone channel inside the patient's quiet hours: skip it now, or wait ``until``."""

    skip: bool
    until: datetime


QUIET_SKIP_REASON = "quiet hours in the patient's zone"


def quiet_hours(
    channel: Channel, purpose: Purpose, tz_name: str, now: datetime, *, region: str | None = None
) -> QuietHours | None:
    """The quiet-hours decision for one message on one channel; None means send now.

    Texts and calls wait for the end of the patient's quiet hours, except purposes that
    cannot wait (an offer's window is short): those skip to the next channel (email).
    """
    if channel not in PHONE_CHANNELS:
        return None
    until = quiet_until(now, tz_name, region)
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
#: Replies answer the patient's own text and go back in the webhook's response.
UNCAPPED = frozenset({Purpose.OFFER, Purpose.REPLY})


def is_non_urgent(purpose: Purpose) -> bool:
    """Reminders, no-show notes and the like: the frequency caps apply to them."""
    return purpose not in UNCAPPED and purpose.value in set(settings().non_urgent_purposes)


def cap_reason(patient: Patient, purpose: Purpose, now: datetime) -> str | None:
    """Why one more ``purpose`` message to ``patient`` now is over a cap (None if it is not).

    Non-urgent messages: at most ``non_urgent_daily_cap`` per local day and
    ``non_urgent_weekly_cap`` per 7 local days (today and the six before), counted
    together. Every purpose but offers and replies: at most ``daily_cap`` a day.
    Messages that were themselves capped or called off do not count.
    """
    return cap_reasons([patient], purpose, now)[patient.id]


def cap_reasons(patients: list[Patient], purpose: Purpose, now: datetime) -> dict[int, str | None]:
    """``cap_reason`` for many patients at once, from one query (a wave tells hundreds)."""
    if purpose in UNCAPPED or not patients:
        return {p.id: None for p in patients}
    current = settings()
    non_urgent = is_non_urgent(purpose)
    kinds = {p for p in Purpose if p.value in set(current.non_urgent_purposes)}
    # Per patient, on their own clock: (start of the 7-day window, start of today, end of today).
    bounds: dict[int, tuple[datetime, datetime, datetime]] = {}
    for patient in patients:
        today = to_local(now, patient.timezone).date()
        day_start, day_end = local_day_bounds(today, patient.timezone)
        week_start = (
            local_day_bounds(today - timedelta(days=6), patient.timezone)[0]
            if non_urgent
            else day_start
        )
        bounds[patient.id] = (week_start, day_start, day_end)
    rows = db.session.execute(
        sa.select(Notification.patient_id, Notification.purpose, Notification.created_at).where(
            Notification.patient_id.in_(list(bounds)),
            Notification.purpose.in_(sorted({purpose, *kinds} if non_urgent else {purpose})),
            Notification.status != NotificationStatus.CANCELLED,
            Notification.created_at >= min(b[0] for b in bounds.values()),
            Notification.created_at < max(b[2] for b in bounds.values()),
        )
    ).all()
    sent: dict[int, list[tuple[Purpose, datetime]]] = {pid: [] for pid in bounds}
    for patient_id, kind, created_at in rows:
        sent[patient_id].append((kind, created_at))
    limit = daily_cap(purpose)
    reasons: dict[int, str | None] = {}
    for patient_id, (week_start, day_start, day_end) in bounds.items():
        mine = sent[patient_id]
        if non_urgent and _count(mine, kinds, day_start, day_end) >= current.non_urgent_daily_cap:
            reasons[patient_id] = (
                f"at most {current.non_urgent_daily_cap} non-urgent message(s) a day"
            )
        elif (
            non_urgent and _count(mine, kinds, week_start, day_end) >= current.non_urgent_weekly_cap
        ):
            reasons[patient_id] = (
                f"at most {current.non_urgent_weekly_cap} non-urgent messages a week"
            )
        elif _count(mine, {purpose}, day_start, day_end) >= limit:
            reasons[patient_id] = f"daily limit of {limit} {purpose.value} messages reached"
        else:
            reasons[patient_id] = None
    return reasons


def _count(
    sent: list[tuple[Purpose, datetime]], purposes: set[Purpose], start: datetime, end: datetime
) -> int:
    return sum(1 for kind, at in sent if kind in purposes and start <= at < end)


def receipt_timeout(channel: Channel) -> timedelta:
    """How long to wait for a delivery receipt on ``channel``."""
    minutes = settings().receipt_timeout_minutes
    return timedelta(minutes=float(minutes.get(channel.value, 10)))
