"""The dashboard's figures: SQL aggregates over a range of local days and a location.

Every figure is one aggregate query (no rows are counted in Python). Each row is put on
a day in its own location's zone — a slot released at 23:30 in Los Angeles counts on
that Los Angeles day — so a range means the same days at every clinic. Each query
first narrows by a UTC window one day wider than the range on each side (any zone's
day lies inside it), which the indexes of migration 0400 serve, then keeps the rows
whose local day is in the range.

Definitions (docs/interface.md repeats them for readers of the API):

- a *release* is a slot's latest opening (``slot.opened_at``: created open, cancelled,
  freed by a no-show, released); it is *filled* by the first appointment booked on the
  slot at or after that opening, and *how* is that appointment's ``source``; the *fill
  rate* is filled ÷ settled releases — a release not filled whose slot is still ahead is
  *still open* (it may yet fill) and left out;
- *time to fill* runs from the opening to that booking; *offers per filled slot* counts
  the offers made for the slot between the two;
- *acceptance* = accepted ÷ answered-or-lapsed offers (accepted + declined + expired;
  withdrawn and pending ones had no chance to be answered), by the channel that
  reached the patient (the delivered attempt, else the last one tried), the wave, and
  the offer mode in force when the offer was made;
- *messages per patient per week*: messages to patients (staff alerts aside) ÷ the
  patients who received any, week by week;
- *delivery success*: delivered ÷ attempts that reached a final provider status
  (skipped channels and cancelled messages aside); *fallback depth*: how many channels
  a message went through;
- *no-show rate* = no-shows ÷ (no-shows + checked in + completed), and *late
  cancellations* = patient cancellations in the late or full-charge tier ÷ every
  appointment, both by the week the appointment starts;
- *fees*: charges opened in the range: charged, waived, collected (succeeded minus
  refunded);
- *revenue recovered*: the service prices of the filled releases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Location
from portal.models.enums import AppointmentSource
from portal.services.errors import DomainError

#: The longest range one request may ask for, and the range shown when none is given.
MAX_DAYS = 366
DEFAULT_DAYS = 28

#: The UTC window around a range of local days: every zone's day lies within it.
_MARGIN = timedelta(days=1)

#: Keeps a row whose instant ``col`` falls on a local day in the range, in zone ``tz``.
_IN_RANGE = (
    "{col} >= :lo AND {col} < :hi AND ({col} AT TIME ZONE {tz})::date BETWEEN :d_from AND :d_to"
)
_AT = "(CAST(:loc AS integer) IS NULL OR {col} = :loc)"


def _where(col: str, tz: str, location: str) -> str:
    return _IN_RANGE.format(col=col, tz=tz) + " AND " + _AT.format(col=location)


#: Releases and their fills, per local week and in total (the ROLLUP row).
_RELEASES = f"""
WITH rel AS (
    SELECT s.id, s.opened_at, s.start_at, v.price_cents,
           date_trunc('week', (s.opened_at AT TIME ZONE l.timezone)::date)::date AS week
    FROM slot s
    JOIN location l ON l.id = s.location_id
    JOIN service v ON v.id = s.service_id
    WHERE {_where("s.opened_at", "l.timezone", "s.location_id")}
), fill AS (
    SELECT DISTINCT ON (r.id) r.id, a.source, a.booked_at
    FROM rel r
    JOIN appointment a ON a.slot_id = r.id AND a.booked_at >= r.opened_at
    ORDER BY r.id, a.booked_at, a.id
), asked AS (
    SELECT f.id, count(*) AS n
    FROM fill f
    JOIN rel r ON r.id = f.id
    JOIN offer o ON o.slot_id = f.id AND o.created_at >= r.opened_at AND o.created_at <= f.booked_at
    GROUP BY f.id
)
SELECT
    GROUPING(r.week) AS is_total, r.week,
    count(*) AS released,
    count(f.id) AS filled,
    count(*) FILTER (WHERE f.id IS NULL AND r.start_at > :now) AS still_open,
    count(*) FILTER (WHERE f.source = 'waitlist') AS by_waitlist,
    count(*) FILTER (WHERE f.source = 'alternative') AS by_alternative,
    count(*) FILTER (WHERE f.source = 'staff') AS by_staff,
    count(*) FILTER (WHERE f.source = 'api') AS by_api,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.booked_at - r.opened_at))
        AS median_seconds,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM f.booked_at - r.opened_at))
        AS p90_seconds,
    coalesce(sum(asked.n), 0)::bigint AS offers_to_fill,
    coalesce(sum(r.price_cents) FILTER (WHERE f.id IS NOT NULL), 0)::bigint AS revenue_cents
FROM rel r
LEFT JOIN fill f ON f.id = r.id
LEFT JOIN asked ON asked.id = r.id
GROUP BY ROLLUP (r.week)
ORDER BY is_total, r.week
"""  # noqa: S608 (fragments are constants; values are bound parameters)

#: Offers answered or not, by the channel that reached the patient, wave and mode.
_OFFERS = f"""
WITH o AS MATERIALIZED (
    SELECT o.id, o.status, least(o.wave, 4) AS wave_group, coalesce(o.mode, 'manual') AS mode
    FROM offer o
    JOIN slot s ON s.id = o.slot_id
    JOIN location l ON l.id = s.location_id
    WHERE {_where("o.created_at", "l.timezone", "s.location_id")}
), reached AS (
    SELECT DISTINCT ON (n.offer_id) n.offer_id, t.channel
    FROM o
    JOIN notification n ON n.offer_id = o.id AND n.purpose = 'offer'
    JOIN notification_attempt t ON t.notification_id = n.id
    ORDER BY n.offer_id, (t.status = 'delivered') DESC, t.id DESC
)
SELECT GROUPING(channel) AS g_channel, GROUPING(wave_group) AS g_wave, GROUPING(mode) AS g_mode,
       channel, wave_group, mode,
       count(*) AS offers,
       count(*) FILTER (WHERE status = 'accepted') AS accepted,
       count(*) FILTER (WHERE status IN ('accepted', 'declined', 'expired')) AS answered
FROM (
    SELECT o.status, o.wave_group, o.mode, coalesce(r.channel, 'none') AS channel
    FROM o LEFT JOIN reached r ON r.offer_id = o.id
) x
GROUP BY GROUPING SETS ((channel), (wave_group), (mode), ())
"""  # noqa: S608 (fragments are constants; values are bound parameters)

#: Messages to patients (staff alerts aside) and their attempts, in one pass, as rows of
#: three kinds: ``week`` (messages, patients), ``channel`` (delivered, finished attempts),
#: ``depth`` (messages, delivered, exhausted). A message belongs to its offer's or
#: appointment's location, else the patient's home clinic, else the first location; the
#: location is worked out before it is joined (joining on the ``coalesce`` directly makes
#: the planner pair every message with every location).
_MESSAGES = f"""
WITH placed AS MATERIALIZED (
    -- Scalar lookups by primary key (coalesce stops at the first found): joins here
    -- make the planner hash whole tables.
    SELECT n.id, n.status, n.patient_id, n.created_at,
           coalesce(
               (SELECT s.location_id FROM offer o JOIN slot s ON s.id = o.slot_id
                WHERE o.id = n.offer_id),
               (SELECT s.location_id FROM appointment a JOIN slot s ON s.id = a.slot_id
                WHERE a.id = n.appointment_id),
               (SELECT p.home_location_id FROM patient p WHERE p.id = n.patient_id),
               (SELECT min(id) FROM location)
           ) AS loc
    FROM notification n
    WHERE n.purpose <> 'staff_alert' AND n.created_at >= :lo AND n.created_at < :hi
), m AS MATERIALIZED (
    SELECT x.id, x.status, x.patient_id,
           date_trunc('week', (x.created_at AT TIME ZONE l.timezone)::date)::date AS week
    FROM placed x JOIN location l ON l.id = x.loc
    WHERE {_where("x.created_at", "l.timezone", "x.loc")}
), t AS MATERIALIZED (
    SELECT m.id, m.status AS message_status, t.channel, t.status
    FROM m JOIN notification_attempt t ON t.notification_id = m.id
)
SELECT 'week' AS kind, week::text AS key,
       count(*) AS a, count(DISTINCT patient_id) AS b, 0::bigint AS c
FROM m GROUP BY week
UNION ALL
SELECT 'channel', channel,
       count(*) FILTER (WHERE status = 'delivered'),
       count(*) FILTER (WHERE status NOT IN ('queued', 'sending', 'sent', 'skipped', 'canceled')),
       0
FROM t GROUP BY channel
UNION ALL
SELECT 'depth', depth::text, count(*),
       count(*) FILTER (WHERE message_status = 'delivered'),
       count(*) FILTER (WHERE message_status = 'exhausted')
FROM (SELECT id, message_status, count(*) AS depth FROM t GROUP BY id, message_status) d
GROUP BY depth
"""  # noqa: S608 (fragments are constants; values are bound parameters)

_ATTENDANCE_BY_WEEK = f"""
SELECT date_trunc('week', (a.starts_at AT TIME ZONE l.timezone)::date)::date AS week,
       count(*) AS appointments,
       count(*) FILTER (WHERE a.status = 'no_show') AS no_shows,
       count(*) FILTER (WHERE a.status IN ('no_show', 'checked_in', 'completed')) AS due,
       count(*) FILTER (WHERE a.status = 'cancelled' AND a.cancelled_by_patient
                        AND a.cancellation_tier IN ('late', 'full')) AS late_cancellations
FROM appointment a
JOIN slot s ON s.id = a.slot_id
JOIN location l ON l.id = s.location_id
WHERE {_where("a.starts_at", "l.timezone", "s.location_id")}
GROUP BY week ORDER BY week
"""  # noqa: S608 (fragments are constants; values are bound parameters)

_FEES = f"""
WITH c AS (
    SELECT c.id, c.kind, c.amount_cents
    FROM charge c
    JOIN patient p ON p.id = c.patient_id
    LEFT JOIN appointment a ON a.id = c.appointment_id
    LEFT JOIN offer o ON o.id = c.offer_id
    LEFT JOIN slot s ON s.id = coalesce(a.slot_id, o.slot_id)
    JOIN location l ON l.id = coalesce(
        s.location_id, p.home_location_id, (SELECT min(id) FROM location)
    )
    WHERE {_where("c.created_at", "l.timezone", "l.id")}
      AND c.duplicate_of_id IS NULL  -- a second payment, given back: nothing was charged
), e AS (
    SELECT c.id, c.kind, c.amount_cents,
           coalesce(sum(x.amount_cents) FILTER (WHERE x.status = 'succeeded'), 0) AS paid,
           coalesce(sum(x.amount_cents) FILTER (WHERE x.status = 'refunded'), 0) AS refunded,
           bool_or(x.status = 'waived') AS waived
    FROM c LEFT JOIN charge_entry x ON x.charge_id = c.id
    GROUP BY c.id, c.kind, c.amount_cents
)
SELECT kind, count(*) AS charges, sum(amount_cents)::bigint AS charged,
       coalesce(sum(amount_cents) FILTER (WHERE waived), 0)::bigint AS waived,
       sum(paid - refunded)::bigint AS collected
FROM e GROUP BY kind ORDER BY kind
"""  # noqa: S608 (fragments are constants; values are bound parameters)


@dataclass(frozen=True)
class Rate:
    """A share with what it is made of, so a reader can check it."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return round(self.part / self.whole, 4) if self.whole else None

    def as_json(self) -> dict[str, Any]:
        return {"count": self.part, "of": self.whole, "rate": self.value}


@dataclass
class Figures:
    """Everything the dashboard shows for one range and location."""

    date_from: date
    date_to: date
    location_id: int | None
    released: int = 0
    filled: int = 0
    #: Releases not filled whose slot is still ahead: they may yet fill.
    still_open: int = 0
    filled_by: dict[str, int] = field(default_factory=dict)
    median_minutes_to_fill: float | None = None
    p90_minutes_to_fill: float | None = None
    offers_per_filled_slot: float | None = None
    revenue_recovered_cents: int = 0
    weeks: list[dict[str, Any]] = field(default_factory=list)
    acceptance: dict[str, Any] = field(default_factory=dict)
    delivery: list[dict[str, Any]] = field(default_factory=list)
    fallback_depth: list[dict[str, Any]] = field(default_factory=list)
    fees: dict[str, Any] = field(default_factory=dict)
    messages_per_patient_per_week: float | None = None

    @property
    def fill_rate(self) -> Rate:
        """Filled ÷ settled releases (filled, or their time has come): open ones may fill."""
        return Rate(self.filled, self.released - self.still_open)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["from"] = data.pop("date_from").isoformat()
        data["to"] = data.pop("date_to").isoformat()
        data["fill_rate"] = self.fill_rate.as_json()
        for week in data["weeks"]:
            week["week"] = week["week"].isoformat()
        return data


def clinic_zone(location_id: int | None) -> str:
    """The zone "today" is read in: the location's, else the practice's first location's."""
    q = sa.select(Location.timezone).order_by(Location.id).limit(1)
    if location_id is not None:
        q = q.where(Location.id == location_id)
    return db.session.scalar(q) or "UTC"


def resolve_range(
    date_from: date | None, date_to: date | None, location_id: int | None
) -> tuple[date, date]:
    """Fill in a missing end (today, locally) or start (``DEFAULT_DAYS`` before the end).

    Refuses (422 ``invalid_range``) a range that ends before it starts or spans more than
    ``MAX_DAYS`` days, and (422 ``unknown_location``) a location that does not exist.
    """
    if location_id is not None and db.session.get(Location, location_id) is None:
        raise DomainError(f"There is no location with id {location_id}.", code="unknown_location")
    if date_to is None:
        today = now_utc().astimezone(ZoneInfo(clinic_zone(location_id))).date()
        date_to = max(today, date_from) if date_from else today
    if date_from is None:
        date_from = date_to - timedelta(days=DEFAULT_DAYS - 1)
    if date_to < date_from:
        raise DomainError("`to` must not be before `from`.", code="invalid_range")
    if (date_to - date_from).days >= MAX_DAYS:
        raise DomainError(f"Ask for at most {MAX_DAYS} days at once.", code="invalid_range")
    return date_from, date_to


def figures(date_from: date, date_to: date, location_id: int | None = None) -> Figures:
    """Compute every dashboard figure for local days ``date_from``..``date_to`` inclusive."""
    params = {
        "d_from": date_from,
        "d_to": date_to,
        "lo": _utc_midnight(date_from) - _MARGIN,
        "hi": _utc_midnight(date_to + timedelta(days=1)) + _MARGIN,
        "loc": location_id,
        "now": now_utc(),
    }

    def rows(sql: str) -> list[sa.RowMapping]:
        return list(db.session.execute(sa.text(sql), params).mappings())

    out = Figures(date_from, date_to, location_id)
    releases = rows(_RELEASES)
    r = releases[-1]  # the ROLLUP total comes last
    out.released, out.filled, out.still_open = r["released"], r["filled"], r["still_open"]
    out.filled_by = {
        AppointmentSource.WAITLIST.value: r["by_waitlist"],
        AppointmentSource.ALTERNATIVE.value: r["by_alternative"],
        AppointmentSource.STAFF.value: r["by_staff"],
        AppointmentSource.API.value: r["by_api"],
    }
    out.median_minutes_to_fill = _minutes(r["median_seconds"])
    out.p90_minutes_to_fill = _minutes(r["p90_seconds"])
    out.offers_per_filled_slot = (
        round(r["offers_to_fill"] / r["filled"], 2) if r["filled"] else None
    )
    out.revenue_recovered_cents = int(r["revenue_cents"])
    message_rows = rows(_MESSAGES)
    by_kind: dict[str, list[sa.RowMapping]] = {"week": [], "channel": [], "depth": []}
    for row in message_rows:
        by_kind[row["kind"]].append(row)
    out.weeks = _weeks(
        releases[:-1],
        rows(_ATTENDANCE_BY_WEEK),
        [
            {"week": date.fromisoformat(r["key"]), "messages": r["a"], "patients": r["b"]}
            for r in by_kind["week"]
        ],
    )
    messages = sum(w["messages"] for w in out.weeks)
    patient_weeks = sum(w["patients_messaged"] for w in out.weeks)
    out.messages_per_patient_per_week = (
        round(messages / patient_weeks, 2) if patient_weeks else None
    )
    out.acceptance = _acceptance(rows(_OFFERS))
    out.delivery = [
        {"channel": d["key"], **Rate(d["a"], d["b"]).as_json()}
        for d in sorted(by_kind["channel"], key=lambda d: _CHANNEL_ORDER.get(d["key"], 9))
    ]
    out.fallback_depth = [
        {"depth": int(d["key"]), "messages": d["a"], "delivered": d["b"], "exhausted": d["c"]}
        for d in sorted(by_kind["depth"], key=lambda d: int(d["key"]))
    ]
    fees = rows(_FEES)
    out.fees = {
        "by_kind": [dict(f) for f in fees],
        "charged_cents": sum(f["charged"] for f in fees),
        "waived_cents": sum(f["waived"] for f in fees),
        "collected_cents": sum(f["collected"] for f in fees),
    }
    return out


_CHANNEL_ORDER = {"sms": 0, "email": 1, "voice": 2, "manual": 3, "none": 4}
_MODE_ORDER = {"sequential": 0, "waves": 1, "broadcast": 2, "learned": 3, "manual": 4}


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _minutes(seconds: float | None) -> float | None:
    return round(float(seconds) / 60, 1) if seconds is not None else None


def _weeks(
    releases: list[sa.RowMapping],
    attendance: list[sa.RowMapping],
    messages: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per week that has anything, each series' figures side by side."""
    weeks: dict[date, dict[str, Any]] = {}

    def week(day: date) -> dict[str, Any]:
        return weeks.setdefault(
            day,
            {
                "week": day,
                "released": 0,
                "filled": 0,
                "still_open": 0,
                "appointments": 0,
                "no_shows": 0,
                "due": 0,
                "late_cancellations": 0,
                "messages": 0,
                "patients_messaged": 0,
            },
        )

    for r in releases:
        week(r["week"]).update(
            released=r["released"], filled=r["filled"], still_open=r["still_open"]
        )
    for r in attendance:
        week(r["week"]).update(
            appointments=r["appointments"],
            no_shows=r["no_shows"],
            due=r["due"],
            late_cancellations=r["late_cancellations"],
        )
    for r in messages:
        week(r["week"]).update(messages=r["messages"], patients_messaged=r["patients"])
    ordered = [weeks[k] for k in sorted(weeks)]
    for w in ordered:
        w["fill_rate"] = Rate(w["filled"], w["released"] - w["still_open"]).value
        w["no_show_rate"] = Rate(w["no_shows"], w["due"]).value
        w["late_cancellation_rate"] = Rate(w["late_cancellations"], w["appointments"]).value
        w["messages_per_patient"] = (
            round(w["messages"] / w["patients_messaged"], 2) if w["patients_messaged"] else None
        )
    return ordered


def _acceptance(groups: list[sa.RowMapping]) -> dict[str, Any]:
    """Split the GROUPING SETS rows into overall, by channel, by wave and by mode."""
    out: dict[str, Any] = {"overall": Rate(0, 0).as_json(), "by_channel": [], "by_wave": []}
    out["by_mode"] = []
    for g in groups:
        rate = {"offers": g["offers"], **Rate(g["accepted"], g["answered"]).as_json()}
        if g["g_channel"] and g["g_wave"] and g["g_mode"]:
            out["overall"] = rate
        elif not g["g_channel"]:
            out["by_channel"].append({"channel": g["channel"], **rate})
        elif not g["g_wave"]:
            out["by_wave"].append({"wave": g["wave_group"], **rate})
        else:
            out["by_mode"].append({"mode": g["mode"], **rate})
    out["by_channel"].sort(key=lambda x: _CHANNEL_ORDER.get(x["channel"], 9))
    out["by_wave"].sort(key=lambda x: x["wave"])
    out["by_mode"].sort(key=lambda x: _MODE_ORDER.get(x["mode"], 9))
    return out
