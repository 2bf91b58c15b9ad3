"""Practice-wide tunables and per-category policies, with defaults in one place.

``settings()`` returns every tunable as one typed, frozen snapshot, read with a single
query and cached for the request or job (``flask.g``); a ``Setting`` row overrides a
default (dict values merge key by key). ``set_setting`` writes an override and drops
the cached snapshot, so the same request reads its own change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import sqlalchemy as sa
from flask import g, has_app_context

from portal.db import db
from portal.models import OfferPolicy, Setting
from portal.models.enums import OfferMode

_CACHE = "portal_settings"


@dataclass(frozen=True)
class Settings:
    """Every tunable the portal reads (a ``Setting`` row with the same key overrides it)."""

    #: An individual patient receives at most this many offers per local day.
    daily_offer_cap: int = 3
    #: The ``learned`` offer mode: at most this many offers per patient per 7 days; a
    #: wave grows until the learned chance that someone accepts reaches the target
    #: (percent), up to the largest wave.
    learned_weekly_offer_cap: int = 3
    learned_wave_target_percent: int = 80
    learned_wave_max: int = 8
    #: The longest a learned wave stays open (it gets a quarter of the time left before
    #: the cutoff): slow readers (e-mail) still find the offer open.
    learned_far_window_minutes: int = 120
    #: Offers for slots starting sooner than this go only to entries that accept short notice.
    short_notice_hours: int = 2
    #: Alternatives shown to a patient who lost a race (SPEC §3.5).
    alternatives_limit: int = 3
    alternatives_horizon_hours: int = 48
    alternative_weights: dict[str, int] = field(
        default_factory=lambda: dict(
            base=100,
            same_practitioner=30,
            preferred_practitioner=20,
            per_hour_away=-5,
            max_hours_penalty=-30,
            same_day=25,
            in_availability=15,
            preferred_hour=10,
        )
    )
    #: Deposit holds (SPEC §3.8).
    hold_seconds: int = 90
    deposit_cents: int = 5000
    #: Quiet hours in the patient's zone: no SMS or calls between start and end.
    quiet_hours: dict[str, str] = field(default_factory=lambda: dict(start="21:00", end="08:00"))
    #: During quiet hours these purposes skip SMS and calls and go to email at once;
    #: every other purpose waits for the end of the quiet hours.
    quiet_hours_escalate: list[str] = field(
        default_factory=lambda: ["offer", "slot_filled", "hold"]
    )
    #: Minutes to wait for a delivery receipt before a channel counts as silently failed.
    receipt_timeout_minutes: dict[str, float] = field(
        default_factory=lambda: dict(sms=10, voice=10, email=30)
    )
    #: Messages of one purpose a patient receives per local day ("default" for the rest).
    daily_purpose_cap: dict[str, int] = field(
        default_factory=lambda: dict(default=5, slot_filled=6, confirmation=10)
    )
    #: Manual outreach raised when every channel failed: minutes until it is due.
    outreach_deadline_minutes: int = 60
    #: No-shows (SPEC §5): an appointment not checked in this long after its start is a
    #: no-show; tiers count a patient's no-shows in the last ``no_show_window_months``.
    no_show_grace_minutes: int = 5
    no_show_window_months: int = 6
    #: The first no-show's rebooking offer (percent off the service price).
    rebook_discount_percent: int = 20
    #: Freed time: the remainder of a no-show's slot starts this long from now.
    freed_time_lead_minutes: int = 10
    #: Frequent cancellers: this many cancellations within ``frequent_cancellation_days``
    #: (counting back from, and including, the latest) raise a flag.
    frequent_cancellation_count: int = 2
    frequent_cancellation_days: int = 30
    #: A claimed outreach task nobody records an outcome for is free again after this.
    outreach_claim_minutes: int = 15
    #: "No answer": the suggested wait before calling again.
    outreach_retry_minutes: int = 30

    # --- messaging rules (services/notify/policy.py) ---------------------------------
    #: Stricter quiet hours by the recipient's IANA zone or US state (from the phone's
    #: area code, e.g. "FL"), same shape as ``quiet_hours``: {"FL": {"start": "20:00",
    #: "end": "08:00"}}. An override can only add quiet time, never remove it.
    quiet_hours_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Non-urgent messages (reminders, no-show notes, anything marketing-like) a patient
    #: receives at most per local day and per 7 local days; offers and replies are exempt.
    non_urgent_purposes: list[str] = field(default_factory=lambda: ["reminder", "no_show"])
    non_urgent_daily_cap: int = 1
    non_urgent_weekly_cap: int = 3

    # --- reminders (services/reminders.py) -------------------------------------------
    #: Hours before the visit, per service category ("default" for the rest). Whole days
    #: (multiples of 24) keep the visit's wall-clock time on the patient's calendar
    #: across a DST change; 3 days and 1 day before is the cadence with the lowest
    #: missed-visit rate in a 54,066-patient RCT (AJMC 2018).
    reminder_cadence_hours: dict[str, list[int]] = field(
        default_factory=lambda: {"default": [72, 24]}
    )
    #: A reminder moved out of quiet hours goes this long before they begin, so a
    #: briefly queued text still lands inside the allowed hours.
    reminder_quiet_margin_minutes: int = 15
    #: A reminder that could only arrive closer to the visit than this is pointless.
    reminder_min_notice_minutes: int = 120

    # --- reschedule (services/reschedule.py) -----------------------------------------
    #: Moving an appointment at least the category's notice hours ahead costs nothing;
    #: off, the cancellation policy's fee for leaving the old time applies.
    reschedule_free_with_notice: bool = True
    #: How far ahead, and how many, open times the reschedule page offers.
    reschedule_horizon_days: int = 21
    reschedule_choices: int = 8


KEYS = frozenset(f.name for f in fields(Settings))


def _load() -> Settings:
    defaults = Settings()
    overrides: dict[str, Any] = {}
    for row in db.session.scalars(sa.select(Setting).where(Setting.key.in_(KEYS))):
        default = getattr(defaults, row.key)
        if isinstance(default, dict) and isinstance(row.value, dict):
            overrides[row.key] = default | row.value
        else:
            overrides[row.key] = row.value
    return replace(defaults, **overrides)


def settings() -> Settings:
    """Return the tunables for this request or job (one query, then cached)."""
    if not has_app_context():
        return _load()
    cached = g.get(_CACHE)
    if cached is None:
        cached = _load()
        setattr(g, _CACHE, cached)
    return cached


def forget_cached_settings() -> None:
    """Drop the cached snapshot (a job starting, a setting changed)."""
    if has_app_context():
        g.pop(_CACHE, None)


def get_setting(key: str) -> Any:
    """Return the configured value of ``key`` (a stored override or the default)."""
    if key not in KEYS:
        raise KeyError(f"unknown setting {key!r}")
    return getattr(settings(), key)


def default_settings() -> dict[str, Any]:
    """Every tunable with its default value."""
    return asdict(Settings())


def set_setting(key: str, value: Any) -> None:
    """Store an override for ``key`` in the current transaction."""
    if key not in KEYS:
        raise KeyError(f"unknown setting {key!r}")
    stmt = sa.dialects.postgresql.insert(Setting).values(key=key, value=value)
    db.session.execute(
        stmt.on_conflict_do_update(index_elements=[Setting.key], set_={"value": value})
    )
    forget_cached_settings()


@dataclass(frozen=True)
class FillPolicy:
    """How to offer a category's slots (the ``OfferPolicy`` row or the defaults)."""

    mode: OfferMode = OfferMode.WAVES
    wave_size: int = 3
    window_minutes: int = 30
    near_hours: int = 4
    near_window_minutes: int = 10
    cutoff_minutes: int = 60

    @property
    def batch_size(self) -> int | None:
        """Patients per wave; ``None`` means everyone who matches."""
        if self.mode == OfferMode.SEQUENTIAL:
            return 1
        if self.mode == OfferMode.BROADCAST:
            return None
        return self.wave_size  # the learned mode sizes each wave itself (filling.advance)


def fill_policy(category: str) -> FillPolicy:
    """Return the offer policy for a service category."""
    row = db.session.scalar(sa.select(OfferPolicy).where(OfferPolicy.category == category))
    if row is None:
        return FillPolicy()
    return FillPolicy(
        mode=row.mode,
        wave_size=row.wave_size,
        window_minutes=row.window_minutes,
        near_hours=row.near_hours,
        near_window_minutes=row.near_window_minutes,
        cutoff_minutes=row.cutoff_minutes,
    )
