"""Practice-wide tunables and per-category policies, with defaults in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portal.db import db
from portal.models import OfferPolicy, Setting
from portal.models.enums import OfferMode

#: Every tunable the portal reads; a ``Setting`` row with the same key overrides it.
DEFAULTS: dict[str, Any] = {
    # An individual patient receives at most this many offers per local day.
    "daily_offer_cap": 3,
    # Offers for slots starting sooner than this go only to entries that accept short notice.
    "short_notice_hours": 2,
    # Alternatives shown to a patient who lost a race (SPEC §3.5).
    "alternatives_limit": 3,
    "alternatives_horizon_hours": 48,
    "alternative_weights": {
        "base": 100,
        "same_practitioner": 30,
        "preferred_practitioner": 20,
        "per_hour_away": -5,
        "max_hours_penalty": -30,
        "same_day": 25,
        "in_availability": 15,
        "preferred_hour": 10,
    },
    # Deposit holds (SPEC §3.8).
    "hold_seconds": 90,
    "deposit_cents": 5000,
    # Quiet hours in the patient's zone: no SMS or calls between start and end.
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    # During quiet hours these purposes skip SMS and calls and go to email at once;
    # every other purpose waits for the end of the quiet hours.
    "quiet_hours_escalate": ["offer", "slot_filled", "hold"],
    # Minutes to wait for a delivery receipt before a channel counts as silently failed.
    "receipt_timeout_minutes": {"sms": 10, "voice": 10, "email": 30},
    # Messages of one purpose a patient receives per local day ("default" for the rest).
    "daily_purpose_cap": {"default": 5, "slot_filled": 6, "confirmation": 10},
    # Manual outreach raised when every channel failed: minutes until it is due.
    "outreach_deadline_minutes": 60,
}


def get_setting(key: str) -> Any:
    """Return the configured value of ``key`` (a stored override or the default)."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown setting {key!r}")
    row = db.session.get(Setting, key)
    if row is None:
        return DEFAULTS[key]
    default = DEFAULTS[key]
    if isinstance(default, dict) and isinstance(row.value, dict):
        return default | row.value
    return row.value


def set_setting(key: str, value: Any) -> None:
    """Store an override for ``key`` in the current transaction."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown setting {key!r}")
    stmt = sa.dialects.postgresql.insert(Setting).values(key=key, value=value)
    db.session.execute(
        stmt.on_conflict_do_update(index_elements=[Setting.key], set_={"value": value})
    )


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
        return self.wave_size


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
