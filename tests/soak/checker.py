"""The soak's checker: set-style invariants over PostgreSQL and the providers' logs.

Like Jepsen's set checker it reads the final state once the faults have stopped and the
system has had time to settle, and compares sets: appointments per slot, offers past
their windows, each notification's channels against what the fakes actually received,
charges against the payment provider, state changes against the audit trail. Every
count is a violation except the ones listed in ``INFORMATIVE`` (what is still visibly
waiting, and how much of everything there was).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from tests.fakes.smtp_server import SmtpServer
from tests.fakes.stripe_server import FakeStripe
from tests.fakes.twilio_server import FakeTwilio

#: The periodic sweeps run every 30–60 s; a deadline this far past means nobody will act.
SLACK = timedelta(seconds=100)
#: What ``sending.STRANDED_AFTER`` allows a send to stay unresolved after a worker died.
STRANDED = timedelta(minutes=5)

INFORMATIVE = (
    "waiting",
    "slots",
    "appointments",
    "no_shows",
    "offers",
    "notifications",
    "charges",
    "reminders_sent",
    "deposits_paid_at_provider",
)


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, name: str, rows: list[Any]) -> None:
        self.counts[name] += len(rows)
        if rows:
            self.examples.setdefault(name, []).extend(rows[:5])

    @property
    def violations(self) -> dict[str, int]:
        return {k: v for k, v in self.counts.items() if v and k not in INFORMATIVE}


def _rows(conn: sa.Connection, query: str, **params: Any) -> list[Any]:
    return [tuple(r) for r in conn.execute(sa.text(query), params)]


def check(
    engine: sa.Engine,
    twilio: FakeTwilio,
    smtp: SmtpServer,
    stripe: FakeStripe,
    queued_jobs: set[str] | None = None,
) -> Tally:
    """Read everything once and count each kind of broken promise.

    ``queued_jobs``: ids of the jobs still waiting in Redis (a send whose job is queued
    behind a backlog is waiting, not lost).
    """
    tally = Tally()
    with engine.connect() as conn:
        now = conn.execute(sa.text("SELECT now()")).scalar_one()
        for name, query in _COUNTS.items():
            tally.counts[name] = conn.execute(sa.text(query)).scalar_one()
        _bookings(conn, tally, now)
        _offers(conn, tally, now)
        _notifications(conn, tally, now, twilio, smtp, queued_jobs or set())
        _charges(conn, tally, stripe)
        _audit(conn, tally)
        _reminders(conn, tally, now)
    return tally


_COUNTS = {
    "slots": "SELECT count(*) FROM slot",
    "appointments": "SELECT count(*) FROM appointment",
    "offers": "SELECT count(*) FROM offer",
    "notifications": "SELECT count(*) FROM notification",
    "charges": "SELECT count(*) FROM charge",
    "no_shows": "SELECT count(*) FROM appointment WHERE status = 'no_show'",
    "reminders_sent": "SELECT count(*) FROM reminder WHERE status = 'sent'",
}

_ACTIVE = "a.status NOT IN ('cancelled', 'no_show')"


def _bookings(conn: sa.Connection, tally: Tally, now: Any) -> None:
    tally.add(
        "double_booked",
        _rows(
            conn,
            f"SELECT a.slot_id, count(*) FROM appointment a WHERE {_ACTIVE}"
            " GROUP BY a.slot_id HAVING count(*) > 1",
        ),
    )
    # A slot booked with no live appointment, or an appointment in a slot not booked.
    tally.add(
        "ghost",
        _rows(
            conn,
            f"SELECT s.id, s.status FROM slot s WHERE s.status = 'booked' AND NOT EXISTS"
            f" (SELECT 1 FROM appointment a WHERE a.slot_id = s.id AND {_ACTIVE})"
            f" UNION ALL SELECT s.id, s.status FROM slot s JOIN appointment a"
            f" ON a.slot_id = s.id AND {_ACTIVE} WHERE s.status <> 'booked'",
        ),
    )
    # A hold without its (still pending) offer and its charge, or one left standing long
    # past its expiry.
    tally.add(
        "ghost_hold",
        _rows(
            conn,
            "SELECT s.id FROM slot s WHERE s.status = 'held' AND (s.hold_offer_id IS NULL"
            " OR s.hold_expires_at IS NULL OR s.hold_expires_at < :stale"
            " OR NOT EXISTS (SELECT 1 FROM charge c WHERE c.offer_id = s.hold_offer_id)"
            " OR NOT EXISTS (SELECT 1 FROM offer o WHERE o.id = s.hold_offer_id"
            " AND o.status = 'pending'))",
            stale=now - SLACK,
        ),
    )
    tally.add(
        "cancelled_after_arrival",
        _rows(
            conn,
            "SELECT id FROM appointment WHERE checked_in_at IS NOT NULL"
            " AND status IN ('cancelled', 'no_show')",
        ),
    )
    tally.add(
        "patient_double_booked",
        _rows(
            conn,
            f"SELECT a.id, b.id FROM appointment a JOIN slot sa ON sa.id = a.slot_id"
            f" JOIN appointment b ON b.patient_id = a.patient_id AND b.id > a.id"
            f" JOIN slot sb ON sb.id = b.slot_id"
            f" WHERE {_ACTIVE} AND b.status NOT IN ('cancelled', 'no_show')"
            f" AND sa.start_at < sb.end_at AND sb.start_at < sa.end_at"
            f" AND NOT EXISTS (SELECT 1 FROM audit_event e WHERE e.action ="
            f" 'appointment.overlap_allowed' AND e.entity_id IN (a.id, b.id))",
        ),
    )
    # A visit whose start passed long ago still waiting for its patient: the sweep missed it.
    tally.add(
        "missed_no_show",
        _rows(
            conn,
            "SELECT a.id FROM appointment a JOIN slot s ON s.id = a.slot_id"
            " WHERE a.status IN ('booked', 'confirmed') AND s.start_at < :due",
            due=now - timedelta(minutes=6) - SLACK,
        ),
    )


def _offers(conn: sa.Connection, tally: Tally, now: Any) -> None:
    tally.add(
        "offer_stuck",
        _rows(
            conn,
            "SELECT id FROM offer WHERE status = 'pending' AND window_expires_at < :stale",
            stale=now - SLACK,
        ),
    )
    tally.add(
        "offer_accepted_twice",
        _rows(
            conn,
            # A booking cancelled later leaves its offer accepted and the slot open to a
            # new offer: two accepted offers are a violation while both still stand.
            "SELECT o.slot_id FROM offer o WHERE o.status = 'accepted' AND (EXISTS"
            " (SELECT 1 FROM slot s WHERE s.hold_offer_id = o.id) OR EXISTS"
            " (SELECT 1 FROM appointment a WHERE a.offer_id = o.id AND a.slot_id = o.slot_id"
            " AND a.status NOT IN ('cancelled', 'no_show')))"
            " GROUP BY o.slot_id HAVING count(*) > 1",
        ),
    )
    # An accepted offer is a booking (or a live hold); anything else was lost on the way.
    tally.add(
        "accepted_without_booking",
        _rows(
            conn,
            "SELECT o.id FROM offer o WHERE o.status = 'accepted' AND NOT EXISTS"
            " (SELECT 1 FROM appointment a WHERE a.offer_id = o.id) AND NOT EXISTS"
            " (SELECT 1 FROM slot s WHERE s.hold_offer_id = o.id AND s.status = 'held')",
        ),
    )


def _notifications(
    conn: sa.Connection,
    tally: Tally,
    now: Any,
    twilio: FakeTwilio,
    smtp: SmtpServer,
    queued_jobs: set[str],
) -> None:
    attempts = {
        row[0]: row[1:]
        for row in _rows(
            conn,
            "SELECT id, notification_id, channel, status, not_before, claimed_at,"
            " receipt_deadline_at FROM notification_attempt",
        )
    }
    # Sent twice: the providers received more than one message or call for one
    # notification on one channel.
    # (notification, channel) → the attempt and provider id of each send, to name them.
    sends: dict[tuple[int, str], list[tuple[int, str]]] = {}
    unknown: list[Any] = []
    with twilio._lock:
        created = list(twilio.created)
    for item in created:
        attempt = attempts.get(item.attempt_id or -1)
        if attempt is None:
            unknown.append(item.sid)
            continue
        sends.setdefault((attempt[0], attempt[1]), []).append((item.attempt_id, item.sid))
    with smtp.handler.lock:
        mails = list(smtp.handler.messages)
    for mail in mails:
        raw = mail["X-Portal-Attempt"] or ""
        attempt = attempts.get(int(raw)) if raw.isdigit() else None
        if attempt is None:
            unknown.append(raw)
            continue
        sends.setdefault((attempt[0], attempt[1]), []).append((int(raw), "smtp"))
    tally.add("duplicated", [(*key, each) for key, each in sends.items() if len(each) > 1])
    tally.add("unknown_sends", unknown)

    # Lost: pending with nothing left that will move it; waiting: a deadline still ahead.
    pending = _rows(conn, "SELECT id FROM notification WHERE status = 'pending'")
    live_by_notification: dict[int, list[Any]] = {}
    for attempt_id, (
        notification_id,
        _channel,
        status,
        not_before,
        claimed_at,
        deadline,
    ) in attempts.items():
        if status in ("queued", "sending", "sent"):
            live_by_notification.setdefault(notification_id, []).append(
                (attempt_id, status, not_before, claimed_at, deadline)
            )
    lost, waiting = [], []
    for (notification_id,) in pending:
        live = live_by_notification.get(notification_id, [])
        if any(_still_moving(a, now, queued_jobs) for a in live):
            waiting.append(notification_id)
        else:
            lost.append((notification_id, [a[1] for a in live]))
    tally.add("lost", lost)
    tally.add("waiting", waiting)
    # Exhausted means "a person will call": the task must exist.
    tally.add(
        "exhausted_without_task",
        _rows(
            conn,
            "SELECT n.id FROM notification n WHERE n.status = 'exhausted' AND NOT EXISTS"
            " (SELECT 1 FROM outreach_task t WHERE t.notification_id = n.id)",
        ),
    )


def _still_moving(attempt: tuple[Any, ...], now: Any, queued_jobs: set[str]) -> bool:
    attempt_id, status, not_before, claimed_at, deadline = attempt
    if status == "queued":
        due_recently = not_before is None or not_before > now - SLACK
        return due_recently or f"notify-attempt-{attempt_id}" in queued_jobs
    if status == "sending":
        return claimed_at is not None and claimed_at > now - STRANDED - SLACK
    return deadline is None or deadline > now - SLACK  # sent: the receipt may still come


#: Deposits paid (a success in the ledger) with neither a booking nor a refund.
KEPT_WITHOUT_BOOKING = (
    "SELECT c.offer_id FROM charge c WHERE c.offer_id IS NOT NULL AND EXISTS"
    " (SELECT 1 FROM charge_entry e WHERE e.charge_id = c.id AND e.status = 'succeeded')"
    " AND NOT EXISTS (SELECT 1 FROM charge_entry e WHERE e.charge_id = c.id"
    " AND e.status = 'refunded') AND NOT EXISTS (SELECT 1 FROM appointment a"
    " WHERE a.offer_id = c.offer_id)"
)


#: The provider payments the ledger records as paid.
RECORDED_PAYMENTS = (
    "SELECT provider_ref FROM charge_entry WHERE status = 'succeeded'"
    " AND provider = 'stripe' AND provider_ref IS NOT NULL"
)
#: Second payments for a settled charge that were not given back.
SECOND_PAYMENT_KEPT = (
    "SELECT c.id FROM charge c WHERE c.duplicate_of_id IS NOT NULL AND NOT EXISTS"
    " (SELECT 1 FROM charge_entry e WHERE e.charge_id = c.id AND e.status = 'refunded')"
)


def _charges(conn: sa.Connection, tally: Tally, stripe: FakeStripe) -> None:
    tally.add(
        "charged_twice",
        _rows(
            conn,
            "SELECT charge_id FROM charge_entry WHERE status = 'succeeded'"
            " GROUP BY charge_id HAVING count(*) > 1",
        ),
    )
    with stripe._lock:
        intents = [i for i in stripe.intents.values() if i.get("status") == "succeeded"]
        paid_sessions = [s for s in stripe.sessions.values() if s.get("payment_status") == "paid"]
    per_charge = Counter(str(i.get("metadata", {}).get("charge_id")) for i in intents)
    tally.add("provider_charged_twice", [c for c, n in per_charge.items() if n > 1])
    # A deposit paid at the provider ends as a booking, or is refunded: never kept for nothing.
    paid_offers = {str(s.get("metadata", {}).get("offer_id")) for s in paid_sessions}
    tally.add("paid_without_booking", _rows(conn, KEPT_WITHOUT_BOOKING))
    # Every payment Stripe took is in the ledger (as a success, then maybe a refund).
    recorded = {
        str(row[0])
        for row in _rows(conn, "SELECT charge_id FROM charge_entry WHERE status = 'succeeded'")
    }
    paid_charges = {str(s.get("metadata", {}).get("charge_id")) for s in paid_sessions}
    tally.add("payment_unrecorded", sorted(paid_charges - recorded))
    # ... each payment as itself: a second payment for a settled charge is not folded
    # into the first (it is recorded on a charge of its own, then refunded).
    recorded_refs = {str(row[0]) for row in _rows(conn, RECORDED_PAYMENTS)}
    paid_refs = {str(s["payment_intent"]) for s in paid_sessions if s.get("payment_intent")}
    paid_refs |= {str(i["id"]) for i in intents}
    tally.add("payment_unrecorded", sorted(paid_refs - recorded_refs))
    tally.add("second_payment_kept", _rows(conn, SECOND_PAYMENT_KEPT))
    tally.counts["deposits_paid_at_provider"] = len(paid_offers)


#: Each state a row reached, and the audit action that must record it.
_AUDITED = {
    "appointment created": ("SELECT a.id FROM appointment a", "appointment", "appointment.created"),
    "appointment cancelled": (
        "SELECT a.id FROM appointment a WHERE a.status = 'cancelled'",
        "appointment",
        "appointment.cancelled",
    ),
    "appointment checked in": (
        "SELECT a.id FROM appointment a WHERE a.checked_in_at IS NOT NULL",
        "appointment",
        "appointment.checked_in",
    ),
    "appointment no-show": (
        "SELECT a.id FROM appointment a WHERE a.status = 'no_show'",
        "appointment",
        "appointment.no_show",
    ),
    "slot created": ("SELECT s.id FROM slot s", "slot", "slot.created"),
    "offer accepted": (
        "SELECT o.id FROM offer o WHERE o.status = 'accepted'",
        "offer",
        "offer.accepted",
    ),
    "offer declined": (
        "SELECT o.id FROM offer o WHERE o.status = 'declined'",
        "offer",
        "offer.declined",
    ),
    "offer expired": (
        "SELECT o.id FROM offer o WHERE o.status = 'expired'",
        "offer",
        "offer.expired",
    ),
    "offer withdrawn": (
        "SELECT o.id FROM offer o WHERE o.status = 'withdrawn'",
        "offer",
        "offer.withdrawn",
    ),
    "notification exhausted": (
        "SELECT n.id FROM notification n WHERE n.status = 'exhausted'",
        "notification",
        "notification.exhausted",
    ),
    "reminder sent": (
        "SELECT r.id FROM reminder r WHERE r.status = 'sent'",
        "reminder",
        "reminder.sent",
    ),
}


def _audit(conn: sa.Connection, tally: Tally) -> None:
    missing: list[Any] = []
    for label, (query, entity, action) in _AUDITED.items():
        rows = _rows(
            conn,
            f"SELECT x.id FROM ({query}) x WHERE NOT EXISTS (SELECT 1 FROM audit_event e"
            " WHERE e.entity_type = :entity AND e.entity_id = x.id"
            " AND e.action = :action)",
            entity=entity,
            action=action,
        )
        missing += [(label, r[0]) for r in rows]
    tally.add("unaudited", missing)


def _reminders(conn: sa.Connection, tally: Tally, now: Any) -> None:
    tally.add(
        "reminder_lost",
        _rows(
            conn,
            "SELECT id FROM reminder WHERE status = 'scheduled' AND due_at < :stale",
            stale=now - SLACK,
        ),
    )
    tally.add(
        "reminder_stale",
        _rows(
            conn,
            "SELECT r.id FROM reminder r JOIN appointment a ON a.id = r.appointment_id"
            " WHERE r.status = 'scheduled' AND a.status IN ('cancelled', 'no_show')",
        ),
    )


def tally_line(faults: int, operations: int, tally: Tally, extra: dict[str, Any]) -> str:
    """One line: faults, operations, every violation count (zeros too), then the rest."""
    keys = (
        "lost",
        "duplicated",
        "ghost",
        "double_booked",
        "ghost_hold",
        "patient_double_booked",
        "cancelled_after_arrival",
        "missed_no_show",
        "offer_stuck",
        "offer_accepted_twice",
        "accepted_without_booking",
        "exhausted_without_task",
        "unknown_sends",
        "charged_twice",
        "provider_charged_twice",
        "paid_without_booking",
        "payment_unrecorded",
        "second_payment_kept",
        "unaudited",
        "reminder_lost",
        "reminder_stale",
    )
    parts = [f"faults={faults}", f"operations={operations}"]
    parts += [f"{k}={tally.counts[k]}" for k in keys]
    parts += [f"{k}={v}" for k, v in extra.items()]
    parts += [f"{k}={tally.counts[k]}" for k in INFORMATIVE]
    return " ".join(parts)
