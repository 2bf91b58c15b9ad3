"""Why released slots were not filled: per-slot outcomes of the fill simulation.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    .venv/bin/python bench/fill_why.py --days 7 --seed 1 --policies broadcast,learned

For every slot released ≥ 2 h ahead and left unfilled it names the first reason that
applies, from what the simulated patients would have done (the hidden answers are
keyed by patient and slot, so they can be asked after the run):

* ``nobody would accept`` — no patient waiting for that service and location at the
  release would have accepted it, whoever asked (the waitlist's ceiling);
* ``acceptor never asked: <why>`` — someone would have accepted but got no offer (the
  reason the matcher gives for them at the release: weekly cap, outside hours, …, or
  ``not reached`` when filling stopped or the cutoff came first);
* ``acceptor's offer <status>`` — they were offered it and the offer expired unread
  (or read too late), or was withdrawn.

It prints the tally per policy, how many waves the slots took, and the releases, fills
and median minutes to fill of slots released by day and in the quiet hours (21:00-08:00);
``--verbose`` adds one line per filled slot (released when, filled how fast, by which
wave), per acceptor's expired offer (sent when, its window, how fast that patient reads
texts and e-mails) and per acceptor never reached (waves, offers, why filling stopped).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from portal import create_app
from portal.clock import ManualClock, use_clock
from portal.db import db
from portal.engines import database_url, normalise_database_url
from portal.models import Appointment, Offer, Slot, WaitlistEntry
from portal.models.enums import OfferStatus
from portal.queue import divert_jobs
from portal.services.matching import match_slot
from portal.services.timezones import to_local
from portal.simulation import MIGRATIONS, _scratch_app, apply_policy
from portal.simulation.behaviour import draw
from portal.simulation.clinic import START, build_clinic
from portal.simulation.engine import Simulation
from portal.simulation.figures import compute
from portal.simulation.scratch import scratch_server

INSTANCE = Path(__file__).resolve().parent.parent / "instance"


def would_accept(plan, patient_id: int, slot: Slot, at) -> bool:
    persona = plan.personas.get(patient_id)
    if persona is None:
        return False
    rng = draw(plan.seed, "answer", patient_id, slot.start_at.isoformat(), slot.service_id)
    return rng.random() < persona.acceptance(slot.start_at, slot.practitioner_id, at)


def diagnose(plan, tally, verbose: bool = False) -> Counter:
    reasons: Counter = Counter()
    booked_at = {
        entry_id: at
        for entry_id, at in db.session.execute(
            sa.select(Offer.waitlist_entry_id, Offer.updated_at).where(
                Offer.status == OfferStatus.ACCEPTED
            )
        )
    }
    for slot_id, released in tally.releases.items():
        if not (plan.start <= released < plan.end):
            continue
        slot = db.session.get(Slot, slot_id)
        if slot.start_at >= plan.end or slot.start_at - released < timedelta(hours=2):
            continue
        filled = db.session.scalar(
            sa.select(Appointment.id).where(
                Appointment.slot_id == slot_id,
                Appointment.offer_id.is_not(None),
                Appointment.booked_at >= released,
            )
        )
        offers = {
            o.patient_id: o
            for o in db.session.scalars(sa.select(Offer).where(Offer.slot_id == slot_id))
        }
        if filled:
            reasons["filled"] += 1
            if verbose:
                booking = db.session.get(Appointment, filled)
                local = to_local(released, slot.location.timezone)
                minutes = (booking.booked_at - released).total_seconds() / 60
                print(
                    f"    filled slot {slot_id} released {local:%a %H:%M}"
                    f" lead {(slot.start_at - released).total_seconds() / 3600:.1f}h"
                    f" in {minutes:.0f} min, wave {booking.offer.wave}"
                )
            continue
        entries = db.session.scalars(
            sa.select(WaitlistEntry).where(
                WaitlistEntry.service_id == slot.service_id,
                WaitlistEntry.location_id == slot.location_id,
                WaitlistEntry.created_at <= released,
            )
        ).all()
        waiting = [e for e in entries if e.id not in booked_at or booked_at[e.id] > released]
        acceptors = [e for e in waiting if would_accept(plan, e.patient_id, slot, released)]
        if not acceptors:
            reasons["nobody would accept"] += 1
            continue
        asked = [offers[e.patient_id] for e in acceptors if e.patient_id in offers]
        if asked:
            offer = asked[0]
            local = to_local(offer.created_at, offer.patient.timezone)
            window = (offer.window_expires_at - offer.created_at).total_seconds() / 60
            lead = (slot.start_at - released).total_seconds() / 3600
            persona = plan.personas[offer.patient_id]
            if verbose:
                print(
                    f"    slot {slot_id} lead {lead:.1f}h offer {local:%a %H:%M} window {window:.0f}m"
                    f" sms {persona.sms_minutes:.0f}m email {persona.email_minutes:.0f}m"
                    f" {offer.status.value}"
                )
            reasons[f"acceptor's offer {offer.status.value}"] += 1
            continue
        with use_clock(ManualClock(released)):
            match = match_slot(slot, released)
        why = {lo.patient.id: lo.reason.value for lo in match.left_out}
        first = why.get(acceptors[0].patient_id, "not reached")
        if verbose and first == "not reached":
            lead = (slot.start_at - released).total_seconds() / 3600
            print(
                f"    slot {slot_id} lead {lead:.1f}h waves {slot.current_wave}"
                f" offers {len(offers)} stopped {slot.fill_exhausted_reasons}"
            )
        reasons[f"acceptor never asked: {first}"] += 1
        db.session.rollback()
    return reasons


def fill_times(plan, tally) -> None:
    """Minutes to fill, by when the slot was released: daytime, or in the quiet hours."""
    times: dict[str, list[float]] = {"day": [], "night": []}
    released_by: Counter = Counter()
    for slot_id, released in tally.releases.items():
        slot = db.session.get(Slot, slot_id)
        if not (plan.start <= released < plan.end) or slot.start_at >= plan.end:
            continue
        hour = to_local(released, slot.location.timezone).hour
        released_by["night" if hour >= 21 or hour < 8 else "day"] += 1
        booked = db.session.scalar(
            sa.select(Appointment.booked_at).where(
                Appointment.slot_id == slot_id,
                Appointment.offer_id.is_not(None),
                Appointment.booked_at >= released,
            )
        )
        if booked is None:
            continue
        times["night" if hour >= 21 or hour < 8 else "day"].append(
            (booked - released).total_seconds() / 60
        )
    for when, values in times.items():
        values.sort()
        middle = values[len(values) // 2] if values else None
        print(
            f"  released by {when}: {released_by[when]}, filled {len(values)},"
            f" median {middle} min to fill"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policies", default="broadcast,learned")
    parser.add_argument("--verbose", action="store_true", help="one line per expired offer")
    args = parser.parse_args()
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    live = normalise_database_url(url) if url else database_url(INSTANCE)
    app = create_app({"SQLALCHEMY_DATABASE_URI": live, "REDIS_URL": ""})
    for name in ("portal", "jobs", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with app.app_context(), scratch_server(live) as server:
        base_url = server.create("base")
        base = _scratch_app(base_url, live)
        with base.app_context():
            upgrade(directory=str(MIGRATIONS))
            with use_clock(ManualClock(START)), divert_jobs(lambda *job: None):
                plan = build_clinic(args.seed, args.days)
            db.session.remove()
            db.engine.dispose()
        for policy in args.policies.split(","):
            scratch = server.create(policy, template=make_url(base_url).database)
            with _scratch_app(scratch, live).app_context():
                apply_policy(policy)
                clock = ManualClock(plan.start)
                simulation = Simulation(plan, clock)
                with use_clock(clock), divert_jobs(simulation.sink):
                    tally = simulation.run()
                    figures = compute(tally, plan.start, plan.end)
                    reasons = diagnose(plan, tally, args.verbose)
                    fill_times(plan, tally)
                    waves = Counter(
                        db.session.execute(
                            sa.select(Offer.slot_id, Offer.wave).distinct()
                        ).scalars()
                    )
                print(f"{policy}: fill {figures['fill_rate']} ≥2h {figures['fill_rate_2h']}")
                for reason, n in reasons.most_common():
                    print(f"  {n:4d}  {reason}")
                print(f"  waves per slot: {sorted(Counter(waves.values()).items())}", flush=True)
                db.session.remove()
                db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
