"""Demo data for ``make run``: two clinics in different zones, two weeks of slots ahead and
six weeks of history behind (``demo_history``)."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from portal.db import db, now_utc
from portal.models import (
    Appointment,
    CancellationPolicy,
    Location,
    Offer,
    OfferPolicy,
    Patient,
    Practitioner,
    Service,
    Slot,
    StaffUser,
    WaitlistEntry,
)
from portal.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    FeeKind,
    OfferMode,
    OfferStatus,
    SlotStatus,
    StaffRole,
)
from portal.services.audit import SYSTEM
from portal.services.demo_history import load_history
from portal.services.matching import match_slot
from portal.services.passwords import hash_password
from portal.services.patients import create_patient
from portal.services.timezones import zone
from portal.services.waitlist import join_waitlist

DEMO_LOGINS = (
    ("admin@glow.example", "Avery Admin", StaffRole.ADMIN, "glow-admin-demo"),
    ("staff@glow.example", "Sam Front-Desk", StaffRole.STAFF, "glow-staff-demo"),
)

LOCATIONS = (
    ("Glow Medical Spa — SoHo", "America/New_York", "+12125550100", "120 Spring St, New York, NY"),
    (
        "Glow Medical Spa — Santa Monica",
        "America/Los_Angeles",
        "+13105550100",
        "1450 Ocean Ave, Santa Monica, CA",
    ),
)
PRACTITIONERS = (
    ("Dr. Maya Chen", 0),
    ("Jordan Reyes, NP", 0),
    ("Dr. Priya Natarajan", 1),
    ("Leo Okafor, RN", 1),
)
SERVICES = (
    ("Botox (up to 3 areas)", "injectables", 30, 45000),
    ("Dermal filler", "injectables", 60, 75000),
    ("Laser hair removal", "laser", 45, 35000),
    ("IPL photofacial", "laser", 60, 50000),
    ("HydraFacial", "facial", 60, 25000),
    ("Chemical peel", "facial", 45, 20000),
)
# Seed §5 policies, with explicit tiers (notice > full-charge so the late fee can apply).
CANCELLATION = (
    ("injectables", 15, FeeKind.PERCENT, 50, 24, 4),
    ("laser", 10, FeeKind.PERCENT, 50, 24, 4),
    ("facial", 15, FeeKind.FIXED, 5000, 12, 2),
)
OFFER_MODES = (
    ("injectables", OfferMode.WAVES, 3),
    ("laser", OfferMode.SEQUENTIAL, 1),
    ("facial", OfferMode.BROADCAST, 1),
)
# Fictional 555-01xx numbers across zones.
PATIENTS = (
    ("Olivia Martin", "+1 212 555 0101"),
    ("Liam Johnson", "+1 646 555 0102"),
    ("Emma Davis", "+1 917 555 0103"),
    ("Noah Wilson", "+1 718 555 0104"),
    ("Ava Thompson", "+1 617 555 0105"),
    ("Mason Garcia", "+1 312 555 0106"),
    ("Sophia Lee", "+1 303 555 0107"),
    ("Lucas Brown", "+1 206 555 0108"),
    ("Isabella Clark", "+1 310 555 0109"),
    ("Ethan Lewis", "+1 424 555 0110"),
    ("Mia Walker", "+1 213 555 0111"),
    ("James Hall", "+1 415 555 0112"),
    ("Charlotte Young", "+1 619 555 0113"),
    ("Benjamin King", "+1 702 555 0114"),
    ("Amelia Wright", "+1 602 555 0115"),
    ("Henry Scott", "+1 305 555 0116"),
    ("Harper Green", "+1 404 555 0117"),
    ("Elijah Baker", "+1 512 555 0118"),
    ("Evelyn Adams", "+1 808 555 0119"),
    ("Daniel Nelson", "+1 907 555 0120"),
)


def is_empty() -> bool:
    """Whether the database holds no locations yet (a fresh install)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(Location)) == 0


def load_demo(today: date | None = None, seed: int = 7, *, history: bool = True) -> dict[str, int]:
    """Create the demo practice (caller commits); returns counts of what was made.

    ``history=False`` leaves out the six past weeks (``demo_history``): quicker, for tests
    about the days ahead.
    """
    rng = random.Random(seed)
    now = now_utc()
    logins = [
        StaffUser(email=email, name=name, role=role, password_hash=hash_password(password))
        for email, name, role, password in DEMO_LOGINS
    ]
    db.session.add_all(logins)
    locations = [Location(name=n, timezone=tz, phone=p, address=a) for n, tz, p, a in LOCATIONS]
    db.session.add_all(locations)
    practitioners = [Practitioner(name=n, location=locations[i]) for n, i in PRACTITIONERS]
    services = [
        Service(name=n, category=c, duration_minutes=d, price_cents=p) for n, c, d, p in SERVICES
    ]
    db.session.add_all(practitioners + services)
    # The migrations seed the implementation guide's policies; the demo clinic sets its own.
    for category, grace, kind, value, notice, full in CANCELLATION:
        policy = {
            "grace_minutes": grace,
            "grace_free": True,
            "late_fee_kind": kind,
            "late_fee_value": value,
            "notice_hours": notice,
            "full_charge_hours": full,
            "updated_at": now,
        }
        db.session.execute(
            pg_insert(CancellationPolicy)
            .values(category=category, created_at=now, **policy)
            .on_conflict_do_update(index_elements=[CancellationPolicy.category], set_=policy)
        )
    for category, mode, size in OFFER_MODES:
        db.session.add(OfferPolicy(category=category, mode=mode, wave_size=size))
    db.session.flush()

    patients = [
        create_patient(
            name=n, phone=p, email=_email(n), home_location=locations[i % 2], actor=SYSTEM
        )
        for i, (n, p) in enumerate(PATIENTS)
    ]
    slots = _slots(practitioners, services, today or now.date(), rng, now)
    booked = 0
    busy: dict[int, list[Slot]] = {p.id: [] for p in patients}
    for slot in slots:
        if slot.status == SlotStatus.BOOKED:
            patient = _free_patient(patients, busy, slot, rng)
            if patient is None:  # everyone is busy then: leave the time open
                slot.status, slot.opened_at = SlotStatus.OPEN, now
                continue
            busy[patient.id].append(slot)
            db.session.add(
                Appointment(
                    slot=slot,
                    patient=patient,
                    status=AppointmentStatus.CONFIRMED,
                    source=AppointmentSource.STAFF,
                    booked_at=now - timedelta(days=rng.randint(1, 20)),
                    confirmed_at=now,
                )
            )
            booked += 1
    entries = 0
    for i, patient in enumerate(patients[:16]):
        # Every service at both locations has someone waiting, so any release can fill.
        at = (i // len(services)) % 2
        location = locations[at]
        service = services[i % len(services)]
        windows = (
            [{"weekday": d, "start": "09:00", "end": "18:00"} for d in range(5)]
            if i % 3 == 0
            else []
        )
        join_waitlist(
            patient=patient,
            service=service,
            location=location,
            preferred_practitioner=practitioners[2 * at] if i % 4 == 0 else None,
            windows=windows,
            short_notice_ok=i % 2 == 0,
            priority=1 if i % 5 == 0 else 0,
            actor=SYSTEM,
        )
        entries += 1
    db.session.flush()
    past_offers = _offer_history(slots, now)
    past: dict[str, int] = {}
    if history:
        waiting = list(db.session.scalars(sa.select(WaitlistEntry).order_by(WaitlistEntry.id)))
        past = load_history(practitioners, services, waiting, logins[1], today or now.date(), now)
    return {
        "locations": len(locations),
        "practitioners": len(practitioners),
        "services": len(services),
        "patients": len(patients),
        "slots": len(slots),
        "booked": booked,
        "waitlist": entries,
        "past offers": past_offers,
        **{f"history: {k}": v for k, v in past.items()},
    }


def _free_patient(
    patients: list[Patient], busy: dict[int, list[Slot]], slot: Slot, rng: random.Random
) -> Patient | None:
    """A random patient with no demo booking overlapping ``slot`` (no double-booked demo)."""
    for patient in rng.sample(patients, len(patients)):
        if all(b.end_at <= slot.start_at or b.start_at >= slot.end_at for b in busy[patient.id]):
            return patient
    return None


def _offer_history(slots: list[Slot], now: datetime) -> int:
    """Give the unbooked slots a past: offered days ago, unanswered, filling over.

    A fresh demo otherwise has dozens of open slots nobody was asked about, and the
    first ``reconcile`` (at once under ``make run``) offers them all, spending every
    waiting patient's daily cap: the first slot a visitor releases then finds nobody.
    Each unbooked slot is offered to exactly whom matching would ask now, two days
    earlier (so today's caps stay unspent); then nobody is left to ask, for reasons
    the slot keeps. No messages are queued: these offers are history.
    """
    asked_at = now - timedelta(days=2)
    ended_at = asked_at + timedelta(minutes=30)
    made = 0
    for slot in slots:
        if slot.status != SlotStatus.OPEN:
            continue
        candidates = match_slot(slot, now).candidates
        for candidate in candidates:
            db.session.add(
                Offer(
                    slot_id=slot.id,
                    waitlist_entry_id=candidate.entry.id,
                    patient_id=candidate.patient.id,
                    status=OfferStatus.EXPIRED,
                    wave=1,
                    mode=dict((c, m) for c, m, _ in OFFER_MODES).get(slot.service.category),
                    score=candidate.score,
                    score_reasons=candidate.reasons,
                    window_expires_at=ended_at,
                    created_at=asked_at,
                    updated_at=ended_at,
                )
            )
        db.session.flush()
        made += len(candidates)
        slot.opened_at = asked_at
        slot.current_wave = 1 if candidates else 0
        slot.fill_exhausted_at = ended_at
        excluded = match_slot(slot, now).excluded
        slot.fill_exhausted_reasons = {str(reason): n for reason, n in excluded.items()}
    return made


def _email(name: str) -> str:
    return name.lower().replace(" ", ".") + "@example.com"


def _slots(
    practitioners: list[Practitioner],
    services: list[Service],
    today: date,
    rng: random.Random,
    now: datetime,
) -> list[Slot]:
    """Working hours 9–17 local on weekdays for two weeks; about a quarter left open."""
    slots: list[Slot] = []
    for offset in range(15):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for p_index, practitioner in enumerate(practitioners):
            tz = zone(practitioner.location.timezone)
            start = datetime.combine(day, time(9), tzinfo=tz)
            closing = datetime.combine(day, time(17), tzinfo=tz)
            while start < closing:
                service = services[(p_index + start.hour) % len(services)]
                end = start + timedelta(minutes=service.duration_minutes)
                if end > closing:
                    break
                if start > now:
                    status = SlotStatus.OPEN if rng.random() < 0.25 else SlotStatus.BOOKED
                    slots.append(
                        Slot(
                            location=practitioner.location,
                            practitioner=practitioner,
                            service=service,
                            start_at=start,
                            end_at=end,
                            status=status,
                            opened_at=now if status == SlotStatus.OPEN else None,
                        )
                    )
                start = end + timedelta(minutes=15)
    db.session.add_all(slots)
    db.session.flush()
    return slots


def reset_all() -> None:
    """Empty every table (development only).

    The audit trail refuses TRUNCATE (migration 0400); wiping a development database on
    purpose sets this transaction's ``session_replication_role`` so its triggers stand
    aside (a superuser's right, which the embedded development server grants).
    """
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    db.session.execute(sa.text("SET LOCAL session_replication_role = replica"))
    db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
