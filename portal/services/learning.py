"""How likely a waiting patient is to accept a slot, learned from their answers.

An explainable Bayesian estimate, recomputed from the offer rows at ranking time, so
every answer counts the moment it is recorded (no nightly batch):

* the clinic's rate ``c``: accepted / answered-or-expired offers of the last 180 days,
  with a weak prior (``PRIOR_RATE``, worth ``PRIOR_OFFERS`` offers);
* the patient's rate ``p``: their own accepted / answered, shrunk toward ``c`` as if
  they had ``PATIENT_WEIGHT`` offers at the clinic's rate (a new patient *is* the clinic);
* for each feature of the slot — local weekday and part of day together, lead time,
  practitioner, the channel the offer will most likely reach them on — their rate in
  that bucket, shrunk toward ``p`` times the clinic's lift for the bucket; the estimate
  is ``p`` times the product of those lifts, each taken to the power ``LIFT_DAMPING``
  (the features overlap: a Tuesday-morning offer made on Monday is also a next-day
  one), clamped to [0.01, 0.95].

The ranking shows the strongest feature as one scored reason ("usually books Tuesday
mornings (+12)"); the points are the estimate's distance from the clinic's rate.
Withdrawn offers (somebody else was faster, a closure) are not answers and do not count.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db
from portal.models import Notification, NotificationAttempt, Offer, Patient, Slot
from portal.models.enums import AttemptStatus, Channel, OfferStatus
from portal.services.notify.policy import quiet_until, unusable_reason
from portal.services.timezones import to_local

HISTORY = timedelta(days=180)
PRIOR_RATE = 0.11  # Epic Fast Pass: 11% of offers accepted (JMIR 2024;26:e52071)
PRIOR_OFFERS = 20
PATIENT_WEIGHT = 4.0
FEATURE_WEIGHT = 2.0
LIFT_DAMPING = 0.5
#: A feature's reason is shown once the patient has answered this many in its bucket.
REASON_EVIDENCE = 2
POINTS_PER_PERCENT = 1.0
POINTS_RANGE = (-30, 60)
ANSWERED = (OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.EXPIRED)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def part_of_day(hour: int) -> str:
    return "morning" if hour < 12 else ("afternoon" if hour < 17 else "evening")


def lead_bucket(lead: timedelta) -> str:
    hours = lead.total_seconds() / 3600
    if hours < 4:
        return "same-day"
    if hours < 24:
        return "next-day"
    return "days-ahead" if hours < 24 * 7 else "weeks-ahead"


@dataclass(frozen=True)
class Features:
    """What the estimate looks at for one patient and one slot."""

    day_part: str  # "Tuesday morning"
    lead: str
    practitioner: str
    channel: str

    def items(self) -> list[tuple[str, str]]:
        return [
            ("day_part", self.day_part),
            ("lead", self.lead),
            ("practitioner", self.practitioner),
            ("channel", self.channel),
        ]


def features_for(
    start_at: datetime, practitioner_id: int, tz: str, offered_at: datetime, channel: str
) -> Features:
    local = to_local(start_at, tz)
    return Features(
        f"{DAYS[local.weekday()]} {part_of_day(local.hour)}",
        lead_bucket(start_at - offered_at),
        str(practitioner_id),
        channel,
    )


def likely_channel(patient: Patient, now: datetime) -> str:
    """The channel a new offer would most likely reach the patient on now."""
    if unusable_reason(Channel.SMS, patient) is None and quiet_until(now, patient.timezone) is None:
        return Channel.SMS.value
    return Channel.EMAIL.value if patient.email else Channel.SMS.value


@dataclass
class Tally:
    """Accepted and answered offers, overall and per feature bucket."""

    accepted: int = 0
    answered: int = 0
    buckets: Counter[tuple[str, str, bool]] = field(default_factory=Counter)

    def add(self, features: Features, accepted: bool) -> None:
        self.answered += 1
        self.accepted += accepted
        for name, value in features.items():
            self.buckets[(name, value, True)] += accepted
            self.buckets[(name, value, False)] += 1

    def bucket(self, name: str, value: str) -> tuple[int, int]:
        return self.buckets[(name, value, True)], self.buckets[(name, value, False)]


@dataclass(frozen=True)
class Estimate:
    """A patient's chance of accepting a slot, and the reason staff read for it."""

    probability: float
    clinic_rate: float
    points: int
    reason: str
    evidence: int  # the patient's answered offers behind it


def _history(patient_ids: Iterable[int] | None, now: datetime) -> list:
    channel = (
        sa.select(sa.func.max(NotificationAttempt.channel))
        .join(Notification, Notification.id == NotificationAttempt.notification_id)
        .where(
            Notification.offer_id == Offer.id,
            NotificationAttempt.status == AttemptStatus.DELIVERED,
        )
        .scalar_subquery()
    )
    query = (
        sa.select(
            Offer.patient_id,
            Offer.status,
            Offer.created_at,
            Slot.start_at,
            Slot.practitioner_id,
            Patient.timezone,
            channel,
        )
        .join(Slot, Slot.id == Offer.slot_id)
        .join(Patient, Patient.id == Offer.patient_id)
        .where(Offer.created_at > now - HISTORY, Offer.status.in_(ANSWERED))
    )
    if patient_ids is not None:
        query = query.where(Offer.patient_id.in_(list(patient_ids)))
    return db.session.execute(query).all()


def _tallies(rows: list) -> tuple[Tally, dict[int, Tally]]:
    clinic, by_patient = Tally(), {}
    for patient_id, status, created_at, start_at, practitioner_id, tz, channel in rows:
        features = features_for(start_at, practitioner_id, tz, created_at, channel or "sms")
        accepted = status == OfferStatus.ACCEPTED
        clinic.add(features, accepted)
        by_patient.setdefault(patient_id, Tally()).add(features, accepted)
    return clinic, by_patient


def clinic_tally(now: datetime) -> Tally:
    """Every answered offer of the last 180 days (one query)."""
    return _tallies(_history(None, now))[0]


def _rate(accepted: float, answered: float, prior: float, weight: float) -> float:
    return (accepted + weight * prior) / (answered + weight)


def estimate(
    patient_tally: Tally | None, clinic: Tally, features: Features
) -> tuple[float, float, str | None, float]:
    """Return (probability, clinic rate, strongest feature phrase, its log-lift)."""
    mine = patient_tally or Tally()
    c = _rate(clinic.accepted, clinic.answered, PRIOR_RATE, PRIOR_OFFERS)
    p = _rate(mine.accepted, mine.answered, c, PATIENT_WEIGHT)
    probability = p
    strongest: tuple[float, str | None] = (0.0, None)
    for name, value in features.items():
        ca, cn = clinic.bucket(name, value)
        clinic_lift = _rate(ca, cn, c, PRIOR_OFFERS / 2) / c
        pa, pn = mine.bucket(name, value)
        lift = _rate(pa, pn, min(0.95, p * clinic_lift), FEATURE_WEIGHT) / p
        probability *= lift**LIFT_DAMPING
        if pn >= REASON_EVIDENCE and abs(math.log(lift)) > abs(strongest[0]):
            strongest = (math.log(lift), _phrase(name, value, lift > 1))
    return min(0.95, max(0.01, probability)), c, strongest[1], strongest[0]


def _phrase(name: str, value: str, likes: bool) -> str:
    if name == "day_part":
        return f"usually books {value}s" if likes else f"rarely takes {value}s"
    if name == "lead":
        return f"takes {value} offers" if likes else f"rarely takes {value} offers"
    if name == "practitioner":
        return "books this practitioner" if likes else "rarely books this practitioner"
    return f"answers by {value}" if likes else f"seldom answers by {value}"


def estimates_for(
    patients: list[Patient], slot: Slot, now: datetime, clinic: Tally | None = None
) -> dict[int, Estimate]:
    """The learned estimate for each patient for ``slot`` offered now (two queries)."""
    clinic = clinic if clinic is not None else clinic_tally(now)
    _, mine = _tallies(_history([p.id for p in patients], now))
    result = {}
    for patient in patients:
        features = features_for(
            slot.start_at,
            slot.practitioner_id,
            patient.timezone,
            now,
            likely_channel(patient, now),
        )
        tally = mine.get(patient.id)
        probability, c, phrase, _ = estimate(tally, clinic, features)
        low, high = POINTS_RANGE
        points = max(low, min(high, round(POINTS_PER_PERCENT * 100 * (probability - c))))
        percent = f"{100 * probability:.0f}% likely to accept"
        if tally is None or not tally.answered:
            reason = f"no answers yet: {percent} (clinic average)"
        else:
            reason = f"{phrase}: {percent}" if phrase else percent
        result[patient.id] = Estimate(
            probability, c, points, reason, tally.answered if tally else 0
        )
    return result


def wave_size(probabilities: list[float], target: float, largest: int) -> int:
    """The fewest patients whose combined chance of one acceptance reaches ``target``."""
    missing = 1.0
    for size, probability in enumerate(probabilities[:largest], start=1):
        missing *= 1.0 - probability
        if 1.0 - missing >= target:
            return size
    return max(1, min(largest, len(probabilities)))
