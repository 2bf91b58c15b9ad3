"""How simulated patients behave: hidden preferences, reading delays, answers, attendance.

Every draw is keyed by the seed and by what it is about (a patient, a slot, an
appointment), not by the order events happen in: the same patient offered the same
slot decides the same way under every policy (common random numbers), so the policies
are compared on the same world and the same seed always gives the same figures.

Calibration (the published figures the parameters come from; "assumption" marks the
ones no source pins down):

* Offer acceptance — Epic Fast Pass at an academic medical centre, JMIR 2024;26:e52071
  (doi:10.2196/52071): 60,660 offers for 21,978 open appointments, 6,603 (11%) accepted,
  so about 30% of the offered slots were filled and 2.8 offers were sent per slot. An
  earlier Fast Pass roll-out (Chung et al., JMIR 2020;22:e16451) saw 8.3% of 177,311
  offers accepted. ``EAGERNESS`` and the waitlist depth of ``clinic.py`` are set so a
  broadcast policy lands near those figures (``tests/simulation`` checks the band).
* No-shows — 7.79% in a private dermatology practice (J Cutan Med Surg 2007;11:53-6);
  15-25% in public dermatology clinics (Cohen & Vardy, Acta Derm Venereol 2006;86).
  A cash-pay med spa with a card on file sits at the private end: ``NO_SHOW_RATE``.
* Reminders — SMS reminders cut non-attendance with a risk ratio of 0.77 (meta-analysis
  of 12 RCTs, Tang, J Clin Case Stud Rev Rep; Cochrane CD007458 agrees in direction):
  an appointment whose reminder was delivered is missed at ``NO_SHOW_RATE``, one
  without a delivered reminder at ``NO_SHOW_RATE / REMINDER_RISK_RATIO``.
* Cancellations — 12% of bookings, half of them more than two days ahead, a fifth on
  the day, made between 07:00 and 22:00 local time (assumption: the share and lead
  times vary widely between practices).
* Reading delays — median 3 minutes for a text, 90 minutes for an e-mail, nothing read
  between 22:00 and 07:00 local time (assumption).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from portal.services.timezones import to_local

#: Probability of accepting a slot that fits every hidden preference (a patient's
#: ``eagerness`` is drawn around it).
EAGERNESS = 0.95
#: Multipliers when a slot misses a hidden preference.
WRONG_DAY = 0.6
WRONG_HOURS = 0.6
OTHER_PRACTITIONER = 0.7
TOO_SHORT_NOTICE = 0.1
#: An offer read and not accepted is declined this often (else left to expire).
DECLINE_SHARE = 0.35
NO_SHOW_RATE = 0.0779
REMINDER_RISK_RATIO = 0.77
CANCEL_RATE = 0.12
#: Lead time of a cancellation (hours before the start) and how often each applies.
CANCEL_LEADS = ((0.5, 4, 0.2), (4, 24, 0.15), (24, 48, 0.15), (48, 240, 0.5))
HOUR_BANDS = {"morning": (9, 12), "midday": (12, 15), "late": (15, 19)}
NIGHT = (22, 7)  # local hours: nothing is read in between
SMS_MEDIAN_MINUTES = 3.0
EMAIL_MEDIAN_MINUTES = 90.0
READING_SPREAD = 0.6  # sigma of the log of one reading delay around the patient's median


def draw(seed: int, *key: object) -> random.Random:
    """A generator for one decision, keyed by the seed and what it is about."""
    return random.Random(f"{seed}:" + ":".join(str(k) for k in key))


def hour_band(hour: int) -> str:
    for name, (start, end) in HOUR_BANDS.items():
        if start <= hour < end:
            return name
    return "late" if hour >= 19 else "morning"


@dataclass(frozen=True)
class Persona:
    """A patient's hidden preferences: what the portal never sees directly."""

    patient_id: int
    timezone: str
    days: frozenset[int]  # weekdays (Mon=0) they like to come
    band: str  # the part of the day they like
    practitioner_id: int | None  # the one they prefer, if any
    min_lead_hours: float  # they cannot come at shorter notice
    eagerness: float  # acceptance when everything fits
    sms_minutes: float  # median minutes to read a text
    email_minutes: float  # median minutes to read an e-mail

    def acceptance(self, start_at: datetime, practitioner_id: int, now: datetime) -> float:
        """Probability of accepting this slot, offered now."""
        local = to_local(start_at, self.timezone)
        p = self.eagerness
        if local.weekday() not in self.days:
            p *= WRONG_DAY
        if hour_band(local.hour) != self.band:
            p *= WRONG_HOURS
        if self.practitioner_id is not None and practitioner_id != self.practitioner_id:
            p *= OTHER_PRACTITIONER
        if (start_at - now) < timedelta(hours=self.min_lead_hours):
            p *= TOO_SHORT_NOTICE
        return p

    def reading_delay(self, channel: str, delivered_at: datetime, rng: random.Random) -> timedelta:
        """How long after delivery they read a message on ``channel``."""
        median = self.email_minutes if channel == "email" else self.sms_minutes
        if channel == "voice":
            median = 1.0  # a call is answered or not at once
        minutes = median * math.exp(rng.gauss(0.0, READING_SPREAD))
        read_at = delivered_at + timedelta(minutes=minutes)
        local = to_local(read_at, self.timezone)
        if local.hour >= NIGHT[0] or local.hour < NIGHT[1]:
            morning = local.replace(hour=NIGHT[1], minute=0, second=0, microsecond=0)
            if local.hour >= NIGHT[0]:
                morning += timedelta(days=1)
            read_at = morning + timedelta(minutes=median * math.exp(rng.gauss(0.0, READING_SPREAD)))
        return read_at - delivered_at


def make_persona(
    rng: random.Random, patient_id: int, timezone: str, practitioners: list[int]
) -> Persona:
    """Draw one patient's hidden preferences."""
    days = frozenset(rng.sample(range(6), rng.choice((2, 3, 3, 4))))
    band = rng.choice(list(HOUR_BANDS))
    practitioner = rng.choice(practitioners) if rng.random() < 0.5 else None
    lead = rng.choices((0.5, 3, 12, 24), weights=(0.35, 0.3, 0.2, 0.15))[0]
    eagerness = min(0.95, max(0.02, rng.betavariate(2.0, 2.0 / EAGERNESS - 2.0)))
    prefers_email = rng.random() < 0.15
    sms = rng.lognormvariate(math.log(SMS_MEDIAN_MINUTES), 0.8) * (20 if prefers_email else 1)
    email = rng.lognormvariate(math.log(EMAIL_MEDIAN_MINUTES), 0.8)
    return Persona(patient_id, timezone, days, band, practitioner, lead, eagerness, sms, email)


def cancellation_lead(rng: random.Random) -> timedelta | None:
    """How long before the start a booking is cancelled, or None if it is kept."""
    if rng.random() >= CANCEL_RATE:
        return None
    low, high, _ = rng.choices(CANCEL_LEADS, weights=[w for *_, w in CANCEL_LEADS])[0]
    return timedelta(hours=rng.uniform(low, high))


def while_awake(at: datetime, tz: str) -> datetime:
    """Move a night-time moment back to the evening before (people cancel while awake)."""
    local = to_local(at, tz)
    if NIGHT[1] <= local.hour < NIGHT[0]:
        return at
    evening = local.replace(hour=NIGHT[0] - 1, minute=local.minute, second=0, microsecond=0)
    if local.hour < NIGHT[1]:
        evening -= timedelta(days=1)
    return evening.astimezone(at.tzinfo)


def shows_up(rng: random.Random, reminded: bool) -> bool:
    """Whether the patient arrives (fewer no-shows once a reminder was delivered)."""
    rate = NO_SHOW_RATE if reminded else NO_SHOW_RATE / REMINDER_RISK_RATIO
    return rng.random() >= rate
