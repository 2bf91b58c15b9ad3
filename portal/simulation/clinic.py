"""The synthetic clinic: built once per seed into a scratch database through the real
services, and the plan of what its patients will do (cancel, arrive, join the waitlist).

Two locations in two zones (New York, Los Angeles), three practitioners each, two
services in each of the three categories, a full book from Monday to Saturday, a
pool of regular patients holding those bookings, and a waitlist whose patients carry
hidden preferences (``behaviour.Persona``) the portal only partly sees.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

import sqlalchemy as sa

from portal.db import db
from portal.models import Appointment, Location, Practitioner, Service, Slot
from portal.models.enums import AppointmentSource, AppointmentStatus, SlotStatus
from portal.services.audit import SYSTEM
from portal.services.patients import create_patient
from portal.services.timezones import zone
from portal.services.waitlist import join_waitlist
from portal.simulation.behaviour import (
    HOUR_BANDS,
    Persona,
    cancellation_lead,
    draw,
    make_persona,
    while_awake,
)

#: A Monday well clear of the DST changes; the simulation never reads the wall clock.
START = datetime(2026, 4, 6, 4, 0, tzinfo=zone("UTC"))
LOCATIONS = (
    ("Sim Spa — Manhattan", "America/New_York", ("212", "646", "917", "718", "347")),
    ("Sim Spa — Venice", "America/Los_Angeles", ("310", "424", "213", "323", "818")),
)
SERVICES = (
    ("Neurotoxin", "injectables", 30, 45000),
    ("Filler", "injectables", 60, 75000),
    ("Laser hair removal", "laser", 45, 35000),
    ("IPL photofacial", "laser", 60, 50000),
    ("HydraFacial", "facial", 60, 25000),
    ("Chemical peel", "facial", 45, 20000),
)
PRACTITIONERS_PER_LOCATION = 3
REGULARS_PER_LOCATION = 200
#: Waitlist depth: patients waiting at the start and joining per day (per location).
#: With these a broadcast policy lands near Fast Pass's 2.8 offers per open slot.
WAITING_AT_START = 45
JOINS_PER_DAY = 1.5
#: How far beyond the simulated days the book is built (cancellations come early).
BOOK_AHEAD_DAYS = 7
OPEN_HOURS = (9, 18)


@dataclass(frozen=True)
class Join:
    """A patient joining the waitlist during the run."""

    at: datetime
    patient_id: int
    service_id: int
    location_id: int
    practitioner_id: int | None
    windows: list[dict[str, object]]
    short_notice_ok: bool


@dataclass
class Plan:
    """What the world will do, fixed by the seed before any policy runs."""

    seed: int
    start: datetime
    end: datetime
    personas: dict[int, Persona] = field(default_factory=dict)
    cancellations: list[tuple[datetime, int]] = field(default_factory=list)
    arrivals: list[tuple[datetime, int]] = field(default_factory=list)
    joins: list[Join] = field(default_factory=list)
    prices: dict[int, int] = field(default_factory=dict)  # service id → cents


def _phone(area: str, n: int) -> str:
    return f"+1 {area} 555 01{n % 100:02d}"


def _windows(persona: Persona) -> list[dict[str, object]]:
    start, end = HOUR_BANDS[persona.band]
    return [
        {"weekday": d, "start": f"{start:02d}:00", "end": f"{end:02d}:00"}
        for d in sorted(persona.days)
    ]


def build_clinic(seed: int, days: int) -> Plan:
    """Create the clinic, its book and its waitlist (commits); return the plan."""
    rng = random.Random(seed)
    start, end = START, START + timedelta(days=days)
    plan = Plan(seed, start, end)
    locations = [Location(name=n, timezone=tz, phone=_phone(a[0], 0)) for n, tz, a in LOCATIONS]
    services = [
        Service(name=n, category=c, duration_minutes=d, price_cents=p) for n, c, d, p in SERVICES
    ]
    db.session.add_all(locations + services)
    db.session.flush()
    staff = {
        loc.id: [
            Practitioner(name=f"Practitioner {loc.id}-{i}", location_id=loc.id)
            for i in range(PRACTITIONERS_PER_LOCATION)
        ]
        for loc in locations
    }
    db.session.add_all([p for group in staff.values() for p in group])
    db.session.flush()
    plan.prices = {s.id: s.price_cents for s in services}

    slots = _book_slots(rng, locations, staff, services, start, days + BOOK_AHEAD_DAYS)
    regulars = {
        loc.id: [
            create_patient(
                name=f"Regular {loc.id}-{i}",
                phone=_phone(areas[i % len(areas)], i // len(areas)),
                home_location=loc,
                actor=SYSTEM,
            )
            for i in range(REGULARS_PER_LOCATION)
        ]
        for loc, (_, _, areas) in zip(locations, LOCATIONS, strict=True)
    }
    db.session.flush()
    _book_regulars(rng, plan, slots, regulars, start)
    _waitlist(rng, plan, locations, staff, services, start, days)
    db.session.commit()
    plan.cancellations.sort()
    plan.arrivals.sort()
    plan.joins.sort(key=lambda j: (j.at, j.patient_id))
    return plan


def _book_slots(
    rng: random.Random,
    locations: list[Location],
    staff: dict[int, list[Practitioner]],
    services: list[Service],
    start: datetime,
    days: int,
) -> list[Slot]:
    slots = []
    for location in locations:
        tz = zone(location.timezone)
        first = start.astimezone(tz).date()
        for practitioner in staff[location.id]:
            for offset in range(days):
                day = first + timedelta(days=offset)
                if day.weekday() == 6:
                    continue  # closed on Sundays
                at = datetime.combine(day, time(OPEN_HOURS[0]), tz)
                closing = datetime.combine(day, time(OPEN_HOURS[1]), tz)
                while True:
                    service = rng.choice(services)
                    finish = at + timedelta(minutes=service.duration_minutes)
                    if finish > closing:
                        break
                    slots.append(
                        Slot(
                            location_id=location.id,
                            practitioner_id=practitioner.id,
                            service_id=service.id,
                            start_at=at.astimezone(zone("UTC")),
                            end_at=finish.astimezone(zone("UTC")),
                            status=SlotStatus.BOOKED,
                        )
                    )
                    at = finish
    db.session.add_all(slots)
    db.session.flush()
    return slots


def _book_regulars(
    rng: random.Random,
    plan: Plan,
    slots: list[Slot],
    regulars: dict[int, list],
    start: datetime,
) -> None:
    """Every slot starts booked by a regular (one visit a day each at most)."""
    taken: set[tuple[int, object]] = set()
    booked = []
    for slot in slots:
        pool = regulars[slot.location_id]
        day = slot.start_at.date()
        patient = rng.choice(pool)
        while (patient.id, day) in taken:
            patient = rng.choice(pool)
        taken.add((patient.id, day))
        booked.append(
            Appointment(
                slot_id=slot.id,
                patient_id=patient.id,
                status=AppointmentStatus.CONFIRMED,
                source=AppointmentSource.STAFF,
                booked_at=start - timedelta(days=rng.randint(7, 60)),
                confirmed_at=start - timedelta(days=1),
            )
        )
    db.session.add_all(booked)
    db.session.flush()
    zones = {loc.id: loc.timezone for loc in db.session.scalars(sa.select(Location))}
    for slot, appointment in zip(slots, booked, strict=True):
        lead = cancellation_lead(draw(plan.seed, "cancel", appointment.id))
        when = None if lead is None else while_awake(slot.start_at - lead, zones[slot.location_id])
        if when is not None and when > start and slot.start_at < plan.end:
            plan.cancellations.append((when, appointment.id))
        elif slot.start_at < plan.end:
            plan.arrivals.append((slot.start_at - timedelta(minutes=5), appointment.id))


def _waitlist(
    rng: random.Random,
    plan: Plan,
    locations: list[Location],
    staff: dict[int, list[Practitioner]],
    services: list[Service],
    start: datetime,
    days: int,
) -> None:
    """Waiting patients with hidden preferences; some wait now, others join later."""
    number = 0
    for location, (_, _, areas) in zip(locations, LOCATIONS, strict=True):
        joining = int(JOINS_PER_DAY * days)
        for i in range(WAITING_AT_START + joining):
            number += 1
            patient = create_patient(
                name=f"Waiting {location.id}-{i}",
                phone=_phone(areas[(i + 2) % len(areas)], 50 + i // len(areas)),
                email=f"waiting{number}@sim.example",
                home_location=location,
                actor=SYSTEM,
            )
            db.session.flush()
            persona = make_persona(
                rng, patient.id, patient.timezone, [p.id for p in staff[location.id]]
            )
            plan.personas[patient.id] = persona
            service = rng.choice(services)
            declared_practitioner = (
                persona.practitioner_id if persona.practitioner_id and rng.random() < 0.5 else None
            )
            windows = _windows(persona) if rng.random() < 0.5 else []
            short_notice = persona.min_lead_hours <= 3 and rng.random() < 0.8
            if i < WAITING_AT_START:
                join_waitlist(
                    patient=patient,
                    service=service,
                    location=location,
                    preferred_practitioner=db.session.get(Practitioner, declared_practitioner)
                    if declared_practitioner
                    else None,
                    windows=windows,
                    short_notice_ok=short_notice,
                    actor=SYSTEM,
                )
            else:
                at = start + timedelta(seconds=rng.uniform(0, days * 86400))
                plan.joins.append(
                    Join(
                        at,
                        patient.id,
                        service.id,
                        location.id,
                        declared_practitioner,
                        windows,
                        short_notice,
                    )
                )


def service_prices() -> dict[int, int]:
    """Service id → price in cents (for revenue recovered)."""
    return dict(db.session.execute(sa.select(Service.id, Service.price_cents)).all())
