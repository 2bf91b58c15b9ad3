"""Analytics dashboard and audit log at scale: 100,000 slots, 1,000,000 audit events.

Usage (from the project root)::

    .venv/bin/python bench/analytics.py [--slots 100000] [--events 1000000] [--runs 7]

Engines as in the tests: TEST_DATABASE_URL / TEST_REDIS_URL when set, embedded ones
otherwise; a fresh ``portal_bench_analytics`` database is built by the migrations and
dropped at the end (``--keep-db`` keeps it).

The data is loaded with SQL (``generate_series``), two clinics in two zones over about
two years up to a month ahead: every slot booked ahead by staff; one in four cancelled
and released, offered in waves of three (each offer a message, some through a second
channel), six in ten of those filled (waitlist, alternative, staff); no-shows, late
cancellations with fees; and ``--events`` audit events spread over the same two years.
It then prints, each as the median of ``--runs`` runs:

- ``analytics.figures`` for the last 28 days (the dashboard's default), one location,
  90 days and a full year;
- ``GET /staff/analytics`` and ``GET /api/v1/analytics`` end to end (signed-in admin,
  bearer token): the dashboard's answer time, charts rendered;
- the audit log's first page, a page a million events deep, and the first page filtered
  by entity, actor, action and a date range; ``GET /staff/audit`` end to end;

and ``EXPLAIN (ANALYZE, BUFFERS)`` of the release, offer and message aggregates and of two
audit pages (the deepest one and one entity's history).
No rollup table is used: the figures come from the live tables through the indexes of
migration 0400 (``slot.opened_at``, ``appointment.slot_id``/``starts_at``,
``offer.created_at``, ``notification.created_at``, ``charge.created_at``, and the audit
indexes ending in ``(occurred_at, id)``).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import sqlalchemy as sa  # noqa: E402
from flask import current_app  # noqa: E402

from bench.common import bench_database, bench_engines  # noqa: E402
from portal.db import db, now_utc  # noqa: E402

DATABASE = "portal_bench_analytics"
PATIENTS = 20_000

LOAD = """
SET session_replication_role = replica;  -- bulk load: the consistency triggers are for apps
INSERT INTO location (id, name, timezone, phone, address, opening_hours) VALUES
    (1, 'Bench SoHo', 'America/New_York', '+12125550100', '', '[]'),
    (2, 'Bench Santa Monica', 'America/Los_Angeles', '+13105550100', '', '[]');
INSERT INTO practitioner (id, name, location_id, active)
    SELECT g, 'Practitioner ' || g, 1 + g % 2, true FROM generate_series(1, 20) g;
INSERT INTO service (id, name, category, duration_minutes, min_fill_minutes, price_cents, active)
    SELECT g, 'Service ' || g, (ARRAY['injectables', 'laser', 'facial'])[1 + g % 3], 30, 30,
           20000 + 5000 * g, true
    FROM generate_series(1, 6) g;
INSERT INTO patient (id, name, phone_raw, phone_e164, email, timezone, timezone_source,
                     home_location_id, sms_opt_out, deposit_required, prepayment_required,
                     created_at, updated_at)
    SELECT g, 'Patient ' || g, '', '+1212555' || lpad((g % 10000)::text, 4, '0'),
           'p' || g || '@example.test', 'America/New_York', 'explicit', 1 + g % 2,
           false, false, false, :now, :now
    FROM generate_series(1, :patients) g;
INSERT INTO waitlist_entry (id, patient_id, service_id, location_id, windows, short_notice_ok,
                            priority, status, created_at, updated_at)
    SELECT g, g, 1 + g % 6, 1 + g % 2, '[]', true, 0, 'active', :now, :now
    FROM generate_series(1, :patients) g;
-- Slot g starts every 10 minutes from about 23 months ago to a month ahead.
CREATE TEMP TABLE plan (g int, practitioner_id int, location_id int, service_id int,
                        start_at timestamptz, released bool, filled bool, source text,
                        opened_at timestamptz);
INSERT INTO plan (g, practitioner_id, location_id, service_id, start_at, released, filled,
                  source)
    SELECT g,
           1 + g % 20 AS practitioner_id,
           1 + (1 + g % 20) % 2 AS location_id,
           1 + g % 6 AS service_id,
           :now - (:slots - g) * interval '10 minutes' + interval '30 days' AS start_at,
           g % 4 = 0 AS released,
           g % 4 = 0 AND g % 10 < 6 AS filled,
           (ARRAY['waitlist', 'waitlist', 'waitlist', 'alternative', 'staff'])[1 + g % 5]
               AS source
    FROM generate_series(1, :slots) g;
UPDATE plan SET opened_at = start_at - ((2 + g % 70) || ' hours')::interval WHERE released;
INSERT INTO slot (id, location_id, practitioner_id, service_id, start_at, end_at, status,
                  opened_at, current_wave, created_at, updated_at)
    SELECT g, location_id, practitioner_id, service_id, start_at, start_at + interval '30 minutes',
           CASE WHEN released AND NOT filled THEN
                    CASE WHEN start_at > :now THEN 'open' ELSE 'closed' END
                WHEN NOT released AND start_at < :now AND g % 17 = 0 THEN 'closed'
                ELSE 'booked' END,
           opened_at, CASE WHEN released THEN 2 ELSE 0 END,
           start_at - interval '30 days', start_at - interval '30 days'
    FROM plan;
-- The first booking of every slot: cancelled late for released ones (the release),
-- else completed, a no-show (one in 17) or still ahead.
INSERT INTO appointment (id, slot_id, patient_id, status, source, booked_at, starts_at,
                         cancelled_by_patient, cancellation_tier, cancellation_fee_cents,
                         cancelled_at, grace_cancellation, calendar_sequence, no_show_at,
                         completed_at, created_at, updated_at)
    SELECT g, g, 1 + (g * 7) % :patients,
           CASE WHEN released THEN 'cancelled'
                WHEN start_at > :now THEN 'confirmed'
                WHEN g % 17 = 0 THEN 'no_show'
                ELSE 'completed' END,
           'staff', start_at - interval '14 days', start_at,
           released, CASE WHEN released THEN (ARRAY['notice', 'late', 'full'])[1 + g % 3] END,
           CASE WHEN released AND g % 3 > 0 THEN 10000 END,
           CASE WHEN released THEN opened_at END, false, 0,
           CASE WHEN NOT released AND start_at < :now AND g % 17 = 0 THEN start_at END,
           CASE WHEN NOT released AND start_at < :now AND g % 17 <> 0 THEN start_at END,
           start_at - interval '14 days', start_at - interval '14 days'
    FROM plan;
-- Three offers per release (wave 1: two, wave 2: one).
INSERT INTO offer (id, slot_id, waitlist_entry_id, patient_id, status, wave, mode, score,
                   score_reasons, window_expires_at, responded_at, created_at, updated_at)
    SELECT p.g * 3 + k, p.g, 1 + (p.g * 3 + k) % :patients, 1 + (p.g * 3 + k) % :patients,
           CASE WHEN p.filled AND p.source = 'waitlist' AND k = 2 THEN 'accepted'
                WHEN p.filled AND p.source = 'waitlist' THEN 'withdrawn'
                WHEN k = 1 THEN 'declined' ELSE 'expired' END,
           CASE WHEN k = 2 THEN 2 ELSE 1 END,
           (ARRAY['waves', 'sequential', 'broadcast'])[1 + p.service_id % 3], 50, '[]',
           p.opened_at + (k / 2 * 30 + 32) * interval '1 minute',
           p.opened_at + (k * 10 + 5) * interval '1 minute',
           p.opened_at + (k / 2 * 30 + 2) * interval '1 minute',
           p.opened_at + (k / 2 * 30 + 2) * interval '1 minute'
    FROM plan p CROSS JOIN generate_series(0, 2) k WHERE p.released;
-- The filling booking.
INSERT INTO appointment (id, slot_id, patient_id, status, source, booked_at, starts_at, offer_id,
                         cancelled_by_patient, grace_cancellation, calendar_sequence,
                         completed_at, created_at, updated_at)
    SELECT :slots + g, g, 1 + (g * 3 + 2) % :patients,
           CASE WHEN start_at > :now THEN 'confirmed' ELSE 'completed' END,
           source, opened_at + ((20 + g % 300) || ' minutes')::interval, start_at,
           CASE WHEN source = 'waitlist' THEN g * 3 + 2 END, false, false, 0,
           CASE WHEN start_at < :now THEN start_at END,
           opened_at + interval '20 minutes', opened_at + interval '20 minutes'
    FROM plan WHERE filled;
INSERT INTO notification (id, patient_id, purpose, status, dedupe_key, offer_id, context,
                          completed_at, created_at, updated_at)
    SELECT o.id, o.patient_id, 'offer', 'delivered', 'offer:' || o.id, o.id, '{}',
           o.created_at + interval '1 minute', o.created_at, o.created_at
    FROM offer o;
INSERT INTO notification_attempt (notification_id, patient_id, purpose, channel, status,
                                  not_before, created_at, updated_at)
    SELECT n.id, n.patient_id, 'offer', c.channel,
           CASE WHEN n.id % 7 = 0 AND c.channel = 'sms' THEN 'failed' ELSE 'delivered' END,
           n.created_at, n.created_at, n.created_at
    FROM notification n
    CROSS JOIN LATERAL (SELECT 'sms' AS channel UNION ALL
                        SELECT 'email' WHERE n.id % 7 = 0) c;
INSERT INTO charge (id, patient_id, appointment_id, kind, amount_cents, idempotency_key,
                    description, created_at)
    SELECT a.id, a.patient_id, a.id, 'cancellation_fee', 10000, 'fee:' || a.id, '', a.cancelled_at
    FROM appointment a WHERE a.cancellation_fee_cents IS NOT NULL;
INSERT INTO charge_entry (charge_id, status, amount_cents, provider, idempotency_key, note,
                          created_at)
    SELECT c.id, s.status, CASE WHEN s.status = 'waived' THEN 0 ELSE 10000 END,
           'desk', c.idempotency_key || ':' || s.status, '', c.created_at
    FROM charge c CROSS JOIN LATERAL (
        SELECT 'owed' AS status UNION ALL
        SELECT CASE WHEN c.id % 4 = 0 THEN 'waived' ELSE 'succeeded' END) s;
-- Audit events, one a minute or so over the same two years.
INSERT INTO audit_event (occurred_at, actor_type, actor_id, action, entity_type, entity_id,
                         before, after)
    SELECT :now + interval '30 days' - (:events - g) * (interval '1 minute' * 720 * 1440 / :events),
           (ARRAY['system', 'staff', 'patient', 'webhook', 'api'])[1 + g % 5],
           CASE g % 5 WHEN 1 THEN (1 + g % 3)::text WHEN 2 THEN (1 + g % :patients)::text
                      WHEN 3 THEN 'twilio' WHEN 4 THEN '1' END,
           e.action, e.entity_type, 1 + g % :slots,
           CASE WHEN g % 3 = 0 THEN jsonb_build_object('status', 'open') END,
           jsonb_build_object('status', 'booked', 'n', g)
    FROM generate_series(1, :events) g
    CROSS JOIN LATERAL (SELECT (ARRAY['slot.opened', 'offer.created', 'offer.declined',
                                      'appointment.created', 'patient.updated',
                                      'charge.opened', 'setting.changed',
                                      'staff.login'])[1 + g % 8] AS action) a
    CROSS JOIN LATERAL (SELECT a.action,
                               (ARRAY['slot', 'offer', 'offer', 'appointment', 'patient',
                                      'charge', 'setting', 'staff_user'])[1 + g % 8]
                                   AS entity_type) e;
INSERT INTO staff_user (id, email, name, password_hash, role, active, session_epoch,
                        created_at, updated_at)
    VALUES (1, 'bench@clinic.test', 'Bench Admin', :hash, 'admin', true, 0, :now, :now);
SELECT setval(pg_get_serial_sequence(t, 'id'), 10000000)
    FROM unnest(ARRAY['slot', 'appointment', 'patient', 'practitioner', 'service', 'location',
                      'offer', 'notification', 'notification_attempt', 'charge',
                      'charge_entry', 'waitlist_entry', 'staff_user', 'audit_event']) t;
SET session_replication_role = origin;
"""

PASSWORD = "bench password 0123456789"  # noqa: S105


def load(slots: int, events: int) -> None:
    from portal.services.passwords import hash_password

    params = {
        "now": now_utc(),
        "slots": slots,
        "events": events,
        "patients": PATIENTS,
        "hash": hash_password(PASSWORD),
    }
    with db.engine.begin() as conn:
        for statement in LOAD.split(";\n"):
            if statement.strip():
                conn.execute(sa.text(statement), params)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and worst of ``runs`` timings in milliseconds (after one warm-up run)."""
    fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(1000 * (time.perf_counter() - started))
        db.session.rollback()
    return statistics.median(samples), max(samples)


def explain(sql: str, params: dict[str, object]) -> str:
    with db.engine.begin() as conn:
        rows = conn.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"), params).all()
        conn.rollback()
    return "\n".join(r[0] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        _, server_url, redis_url = bench_engines(stack, "analytics-bench-", args.redis_db)
        stack.enter_context(
            bench_database(
                server_url,
                redis_url,
                keep=args.keep_db,
                name=DATABASE,
                quiet=True,
                WTF_CSRF_ENABLED=False,
            )
        )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        started = time.perf_counter()
        load(args.slots, args.events)
        counts = {
            t: db.session.scalar(sa.text(f"SELECT count(*) FROM {t}"))  # noqa: S608
            for t in ("slot", "appointment", "offer", "notification", "audit_event")
        }
        print(
            f"loaded in {time.perf_counter() - started:.0f} s: "
            + ", ".join(f"{n:,} {t}" for t, n in counts.items()),
            flush=True,
        )
        report(app, args.runs)


def report(app, runs: int) -> None:
    from portal.models.enums import ActorType
    from portal.services import analytics, audit_log
    from portal.services.api_tokens import create_api_token
    from portal.services.audit import SYSTEM, Action

    today = now_utc().date()
    print(f"\nmedian / worst of {runs} runs, milliseconds")
    for label, days, location in (
        ("figures, last 28 days, all locations (dashboard default)", 28, None),
        ("figures, last 28 days, one location", 28, 1),
        ("figures, last 90 days", 90, None),
        ("figures, last 366 days (the longest range)", 366, None),
    ):
        start = today - timedelta(days=days - 1)
        med, worst = timed(lambda s=start, loc=location: analytics.figures(s, today, loc), runs)
        print(f"  {label:<62} {med:8.1f} / {worst:8.1f}")

    _, token = create_api_token("bench", SYSTEM)
    db.session.commit()
    client = app.test_client()
    login = client.post("/staff/login", data={"email": "bench@clinic.test", "password": PASSWORD})
    assert login.status_code == 302, login.status_code

    def get(path: str, **kw: object) -> None:
        response = client.get(path, **kw)
        assert response.status_code == 200, (path, response.status_code)

    for label, path, kw in (
        ("GET /staff/analytics (default range, charts rendered)", "/staff/analytics", {}),
        (
            "GET /api/v1/analytics (default range)",
            "/api/v1/analytics",
            {"headers": {"Authorization": f"Bearer {token}"}},
        ),
        ("GET /staff/audit (first page)", "/staff/audit", {}),
    ):
        med, worst = timed(lambda p=path, k=kw: get(p, **k), runs)
        print(f"  {label:<62} {med:8.1f} / {worst:8.1f}")

    zone = audit_log.clinic_zone()
    cursor_deep = db.session.execute(
        sa.text(
            "SELECT occurred_at, id FROM audit_event ORDER BY occurred_at, id OFFSET 10 LIMIT 1"
        )
    ).one()
    deep_cursor = f"{int(cursor_deep.occurred_at.timestamp() * 1_000_000)}_{cursor_deep.id}"
    week_ago = today - timedelta(days=7)
    for label, wanted, after in (
        ("audit page: newest 50 of all", audit_log.AuditFilter(zone=zone), None),
        (
            "audit page: the oldest (a million events deep)",
            audit_log.AuditFilter(zone=zone),
            deep_cursor,
        ),
        ("audit page: one entity's history", audit_log.AuditFilter("slot", 4242, zone=zone), None),
        (
            "audit page: one staff user",
            audit_log.AuditFilter(actor_type=ActorType.STAFF, actor_id="2", zone=zone),
            None,
        ),
        (
            "audit page: one action",
            audit_log.AuditFilter(action=Action.CHARGE_OPENED, zone=zone),
            None,
        ),
        (
            "audit page: one past week",
            audit_log.AuditFilter(
                date_from=week_ago - timedelta(days=300),
                date_to=week_ago - timedelta(days=294),
                zone=zone,
            ),
            None,
        ),
        ("audit page: staff scope (patient events only)", audit_log.AuditFilter(zone=zone), None),
    ):
        admin = "staff scope" not in label
        med, worst = timed(
            lambda w=wanted, a=after, adm=admin: audit_log.page(w, is_admin=adm, after=a), runs
        )
        print(f"  {label:<62} {med:8.1f} / {worst:8.1f}")

    start = today - timedelta(days=27)
    params = {
        "d_from": start,
        "d_to": today,
        "lo": analytics._utc_midnight(start) - analytics._MARGIN,
        "hi": analytics._utc_midnight(today + timedelta(days=1)) + analytics._MARGIN,
        "loc": None,
        "now": now_utc(),
    }
    print("\neach analytics query, last 28 days, all locations:")
    for name in (
        "_RELEASES",
        "_OFFERS",
        "_MESSAGES",
        "_ATTENDANCE_BY_WEEK",
        "_FEES",
    ):
        sql = sa.text(getattr(analytics, name))
        med, worst = timed(lambda q=sql: db.session.execute(q, params).all(), runs)
        print(f"  {name:<62} {med:8.1f} / {worst:8.1f}")
    for name in ("_RELEASES", "_OFFERS", "_MESSAGES"):
        print(f"\nplan of analytics.{name} (last 28 days):")
        print(explain(getattr(analytics, name), params))
    q = audit_log.scoped(audit_log.AuditFilter(zone=zone), is_admin=True)
    q = q.where(
        sa.tuple_(audit_log.AuditEvent.occurred_at, audit_log.AuditEvent.id)
        < sa.tuple_(*audit_log.decode_cursor(deep_cursor))
    ).limit(51)
    sql = str(q.compile(db.engine, compile_kwargs={"literal_binds": True}))
    print("\nplan of the deepest audit page (keyset):")
    print(explain(sql, {}))
    q = audit_log.scoped(audit_log.AuditFilter("slot", 4242, zone=zone), is_admin=True).limit(51)
    sql = str(q.compile(db.engine, compile_kwargs={"literal_binds": True}))
    print("\nplan of one entity's history:")
    print(explain(sql, {}))


if __name__ == "__main__":
    main()
