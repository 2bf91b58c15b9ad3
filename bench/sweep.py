"""No-show sweep at scale: 1,000,000 appointments, of which 1,000 are due.

Usage (from the project root)::

    .venv/bin/python bench/sweep.py [--appointments 1000000] [--due 1000] [--future 20000]

Engines as in the tests: TEST_DATABASE_URL / TEST_REDIS_URL when set, embedded ones
otherwise; a fresh ``portal_bench_sweep`` database is built by the migrations and dropped
at the end (``--keep-db`` keeps it); jobs go to Redis database ``--redis-db`` (flushed).

The table is loaded with SQL (``generate_series``): past appointments completed,
cancelled or no-shows, ``--future`` confirmed ones still ahead (awaiting arrival but not
due), and ``--due`` confirmed ones that started 6–15 minutes ago. It prints the plan of
the sweep's batch query (``EXPLAIN ANALYZE``: the partial index
``ix_appointment_awaiting_arrival`` read for the due rows only), the time of the full
sweep (each no-show marked, told, flagged and its freed time offered, in batches of 200),
and the time of the next sweep, when nothing is due.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.common import bench_database, bench_engines  # noqa: E402
from portal.db import db, now_utc  # noqa: E402

DATABASE = "portal_bench_sweep"

LOAD = """
SET session_replication_role = replica;  -- bulk load: the consistency triggers are for apps
INSERT INTO location (id, name, timezone, phone, address)
    VALUES (1, 'Bench clinic', 'America/New_York', '+12125550100', '');
INSERT INTO practitioner (id, name, location_id, active)
    SELECT g, 'Practitioner ' || g, 1, true FROM generate_series(1, 20) g;
INSERT INTO service (id, name, category, duration_minutes, min_fill_minutes, price_cents, active)
    VALUES (1, 'Botox', 'injectables', 60, 30, 40000, true);
INSERT INTO patient (id, name, phone_raw, phone_e164, email, timezone, timezone_source,
                     sms_opt_out, deposit_required, prepayment_required, created_at, updated_at)
    SELECT g, 'Patient ' || g, '', '+1212555' || lpad((g % 10000)::text, 4, '0'),
           'p' || g || '@example.test', 'America/New_York', 'explicit', false, false, false,
           :now, :now
    FROM generate_series(1, 20000) g;
-- g <= past: history; then future (awaiting, not due); then due (started 6-15 min ago).
INSERT INTO slot (id, location_id, practitioner_id, service_id, start_at, end_at, status,
                  current_wave, created_at, updated_at)
    SELECT g, 1, 1 + g % 20, 1, st, st + interval '60 minutes', 'booked', 0, :now, :now
    FROM (SELECT g, CASE
            WHEN g <= :past THEN :now - (g || ' minutes')::interval * 3 - interval '1 day'
            WHEN g <= :past + :future
                THEN :now + ((g - :past) || ' minutes')::interval + interval '1 hour'
            ELSE :now - interval '6 minutes' - ((g - :past - :future) % 10 || ' minutes')::interval
          END AS st FROM generate_series(1, :total) g) AS starts;
INSERT INTO appointment (id, slot_id, patient_id, status, source, booked_at, starts_at,
                         cancelled_by_patient, grace_cancellation, calendar_sequence,
                         created_at, updated_at, checked_in_at, completed_at, no_show_at,
                         cancelled_at)
    SELECT s.id, s.id, 1 + s.id % 20000,
           CASE WHEN s.id > :past THEN 'confirmed'
                WHEN s.id % 10 = 0 THEN 'cancelled'
                WHEN s.id % 25 = 1 THEN 'no_show'
                ELSE 'completed' END,
           'staff', s.start_at - interval '7 days', s.start_at, false, false, 0, :now, :now,
           CASE WHEN s.id <= :past AND s.id % 10 <> 0 AND s.id % 25 <> 1 THEN s.start_at END,
           CASE WHEN s.id <= :past AND s.id % 10 <> 0 AND s.id % 25 <> 1 THEN s.end_at END,
           CASE WHEN s.id <= :past AND s.id % 25 = 1 AND s.id % 10 <> 0
                THEN s.start_at + interval '5 minutes' END,
           CASE WHEN s.id <= :past AND s.id % 10 = 0 THEN s.start_at - interval '2 days' END
    FROM slot s;
UPDATE slot SET status = 'open' FROM appointment a
    WHERE a.slot_id = slot.id AND a.status = 'cancelled';
UPDATE slot SET status = 'closed' FROM appointment a
    WHERE a.slot_id = slot.id AND a.status = 'no_show';
SELECT setval(pg_get_serial_sequence(t, 'id'), (SELECT coalesce(max(id), 1) FROM
    (SELECT max(id) AS id FROM slot UNION ALL SELECT max(id) FROM appointment
     UNION ALL SELECT max(id) FROM patient) m))
    FROM unnest(ARRAY['slot', 'appointment', 'patient', 'practitioner', 'service',
                      'location']) t;
SET session_replication_role = origin;
"""


def load(total: int, due: int, future: int) -> None:
    now = now_utc()
    params = {"now": now, "past": total - due - future, "future": future, "total": total}
    with db.engine.begin() as conn:
        for statement in LOAD.split(";\n"):
            if statement.strip():
                conn.execute(sa.text(statement), params)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def plan() -> str:
    from portal.services import noshow

    statement = noshow.due_statement(noshow.due_cutoff(now_utc()), noshow.BATCH)
    sql = str(statement.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.begin() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}").all()
        conn.rollback()
    return "\n".join(r[0] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--future", type=int, default=20_000)
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        _, server_url, redis_url = bench_engines(stack, "sweep-bench-", args.redis_db)
        stack.enter_context(
            bench_database(
                server_url,
                redis_url,
                keep=args.keep_db,
                name=DATABASE,
                quiet=True,  # one line per no-show otherwise
            )
        )
        started = time.perf_counter()
        load(args.appointments, args.due, args.future)
        count = db.session.scalar(sa.text("SELECT count(*) FROM appointment"))
        print(
            f"loaded {count:,} appointments in {time.perf_counter() - started:.1f} s "
            f"({args.due:,} due, {args.future:,} still ahead)",
            flush=True,
        )
        print("\nplan of one batch (200 rows):\n" + plan(), flush=True)

        from jobs.noshow import sweep_no_shows

        started = time.perf_counter()
        tally = sweep_no_shows()
        full = time.perf_counter() - started
        started = time.perf_counter()
        idle = sweep_no_shows()
        empty = time.perf_counter() - started
        marked = db.session.scalar(
            sa.text(
                "SELECT count(*) FROM appointment WHERE no_show_at >= now() - interval '1 hour'"
            )
        )
        print(
            f"\nsweep: {tally['no_shows']:,} no-shows in {full:.2f} s "
            f"({1000 * full / max(tally['no_shows'], 1):.1f} ms each: marked, told, "
            f"flagged, {tally['freed_slots']:,} freed slots offered); "
            f"{marked:,} marked in the database"
        )
        print(f"next sweep (nothing due): {1000 * empty:.1f} ms, {idle['no_shows']} marked")


if __name__ == "__main__":
    main()
