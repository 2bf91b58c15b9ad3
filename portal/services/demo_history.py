"""Six weeks of demo history, so the analytics dashboard and the audit log tell a story.

Past weekdays at every practitioner: visits booked ahead; some cancelled and released
(late ones with a fee, paid or waived), offered to the waitlist in the category's mode
through SMS → email → voice → staff, filled by an offer, an alternative or the front
desk — or not; no-shows now and then. The portal gets better at it week by week: more
releases filled, fewer no-shows (reminders). Rows are written as they would have been
(same statuses, timestamps in the past, audit events at the moment they happened) but
queue nothing: this is history, not work.

Who is booked is chosen so the demo stays within its own rules: nobody is in two places
at once, and no patient has more than one no-show (none needs a deposit to book).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from portal.db import db
from portal.models import (
    Appointment,
    Charge,
    ChargeEntry,
    Notification,
    NotificationAttempt,
    Offer,
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
    AttemptStatus,
    ChargeKind,
    ChargeStatus,
    FeeTier,
    NotificationStatus,
    OfferMode,
    OfferStatus,
    PaymentProviderName,
    Purpose,
    SlotStatus,
)
from portal.services.audit import SYSTEM, Action, Actor, record
from portal.services.timezones import zone

DAYS = 42
#: Local start times of the past visits at each practitioner.
HOURS = (time(9, 30), time(11, 0), time(13, 30), time(15, 0))
FIRST_NAMES = (
    "Aria", "Blake", "Camila", "Diego", "Elena", "Felix", "Grace", "Hugo", "Iris", "Jonah",
    "Kira", "Leon", "Maya", "Nico", "Opal", "Pablo", "Rosa", "Silas", "Tara", "Vera",
)  # fmt: skip
LAST_NAMES = ("Abbott", "Banks", "Cruz", "Dunn", "Ellis", "Ford", "Gray", "Hayes")
AREA_CODES = ("212", "646", "917", "718", "310", "213", "415", "619")

#: (mode, wave size) by category, as the demo's offer policies say.
MODES = {
    "injectables": (OfferMode.WAVES, 3),
    "laser": (OfferMode.SEQUENTIAL, 1),
    "facial": (OfferMode.BROADCAST, 5),
}


@dataclass
class _Scene:
    rng: random.Random
    now: datetime
    staff: StaffUser
    history_patients: list[Patient]
    entries: list[WaitlistEntry]
    busy: dict[int, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    no_shows: set[int] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    #: Written after the rows they name have ids (three flushes in all, not thousands).
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    fees: list[tuple[Appointment, int, datetime]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def free(self, candidates: list[Any], start: datetime, end: datetime, pid=lambda p: p.id):
        for c in self.rng.sample(candidates, len(candidates)):
            spans = self.busy.setdefault(pid(c), [])
            if all(e <= start or s >= end for s, e in spans):
                return c
        return None

    def occupy(self, patient_id: int, start: datetime, end: datetime) -> None:
        self.busy.setdefault(patient_id, []).append((start, end))

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def load_history(
    practitioners: list[Practitioner],
    services: list[Service],
    entries: list[WaitlistEntry],
    staff: StaffUser,
    today: date,
    now: datetime,
    seed: int = 11,
) -> dict[str, int]:
    """Write the past ``DAYS`` days (the caller commits); returns what was made."""
    from portal.services.patients import create_patient

    rng = random.Random(seed)
    history_patients = []
    for n in range(40):
        name = f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {LAST_NAMES[n // len(FIRST_NAMES) * 3 % 8]}"
        phone = f"+1 {AREA_CODES[n % len(AREA_CODES)]} 555 {121 + n:04d}"
        history_patients.append(
            create_patient(
                name=name,
                phone=phone,
                email=name.lower().replace(" ", ".") + "@example.org",
                home_location=practitioners[n % len(practitioners)].location,
                actor=SYSTEM,
            )
        )
    db.session.flush()
    scene = _Scene(rng, now, staff, history_patients, entries)
    for offset in range(DAYS, 0, -1):
        day = today - timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        progress = (DAYS - offset) / DAYS  # 0 six weeks ago → 1 yesterday
        for p_index, practitioner in enumerate(practitioners):
            tz = zone(practitioner.location.timezone)
            for h_index, at in enumerate(HOURS):
                service = services[(p_index * 2 + h_index + offset) % len(services)]
                start = datetime.combine(day, at, tzinfo=tz)
                _visit(scene, practitioner, service, start, progress)
    db.session.flush()  # slots, appointments, offers
    for patient_id, purpose, at, chain, link in scene.messages:
        _write_message(scene, patient_id, purpose, at, chain, link)
    for appt, fee, at in scene.fees:
        _write_fee(scene, appt, fee, at)
    db.session.flush()  # messages, attempts, charges, entries
    for actor, action, entity, at, kw in scene.events:
        record(actor, action, entity, **kw).occurred_at = at
    db.session.flush()
    return dict(sorted(scene.counts.items()))


def _visit(
    scene: _Scene, practitioner: Practitioner, service: Service, start: datetime, progress: float
) -> None:
    rng = scene.rng
    end = start + timedelta(minutes=service.duration_minutes)
    patient = scene.free(scene.history_patients, start, end)
    if patient is None:
        return
    slot = Slot(
        location_id=practitioner.location_id,
        practitioner_id=practitioner.id,
        service_id=service.id,
        start_at=start,
        end_at=end,
        status=SlotStatus.CLOSED,
        created_at=start - timedelta(days=21),
        updated_at=start,
    )
    db.session.add(slot)
    booked_at = start - timedelta(days=rng.randint(4, 20), hours=rng.randint(0, 8))
    first = Appointment(
        slot=slot,
        patient_id=patient.id,
        source=AppointmentSource.STAFF,
        booked_at=booked_at,
        booked_by_staff_id=scene.staff.id,
        status=AppointmentStatus.BOOKED,
        created_at=booked_at,
        updated_at=booked_at,
    )
    scene.count("visits")
    if rng.random() < 0.22:  # cancelled and released
        _release(scene, slot, service, first, patient, progress)
        return
    scene.occupy(patient.id, start, end)
    db.session.add(first)
    _reminder(scene, first, patient.id, start - timedelta(days=1))
    no_show_rate = 0.13 - 0.08 * progress
    if patient.id not in scene.no_shows and rng.random() < no_show_rate:
        scene.no_shows.add(patient.id)
        _finish(scene, slot, first, AppointmentStatus.NO_SHOW, start + timedelta(minutes=15))
    else:
        _finish(scene, slot, first, AppointmentStatus.COMPLETED, end)


def _finish(
    scene: _Scene, slot: Slot, appt: Appointment, status: AppointmentStatus, at: datetime
) -> None:
    appt.status = status
    appt.updated_at = at
    if status == AppointmentStatus.NO_SHOW:
        appt.no_show_at = at
        slot.status = SlotStatus.CLOSED
        _event(scene, SYSTEM, Action.APPOINTMENT_NO_SHOW, appt, at, after={"status": "no_show"})
        scene.count("no-shows")
    else:
        appt.checked_in_at = slot.start_at - timedelta(minutes=5)
        appt.completed_at = at
        slot.status = SlotStatus.BOOKED
        _event(
            scene,
            Actor.staff(scene.staff),
            Action.APPOINTMENT_COMPLETED,
            appt,
            at,
            after={"status": "completed"},
        )


def _release(
    scene: _Scene,
    slot: Slot,
    service: Service,
    first: Appointment,
    patient: Patient,
    progress: float,
) -> None:
    rng = scene.rng
    notice_hours = rng.choice((2, 3, 6, 10, 16, 20, 30, 40, 52, 70))
    opened = slot.start_at - timedelta(hours=notice_hours, minutes=rng.randint(0, 50))
    tier = (
        FeeTier.FULL if notice_hours < 4 else FeeTier.LATE if notice_hours < 24 else FeeTier.NOTICE
    )
    fee = 0
    if tier == FeeTier.FULL:
        fee = service.price_cents
    elif tier == FeeTier.LATE:
        fee = 5000 if service.category == "facial" else service.price_cents // 2
    first.status = AppointmentStatus.CANCELLED
    first.cancelled_at = opened
    first.cancelled_by_patient = True
    first.cancellation_tier = tier
    first.cancellation_fee_cents = fee
    first.cancel_reason = "Patient cancelled"
    first.updated_at = opened
    db.session.add(first)
    _event(
        scene,
        Actor.patient(patient.id),
        Action.APPOINTMENT_CANCELLED,
        first,
        opened,
        before={"status": "booked"},
        after={"status": "cancelled", "tier": tier.value, "fee_cents": fee},
    )
    if fee:
        scene.fees.append((first, fee, opened))
    slot.status = SlotStatus.OPEN
    slot.opened_at = opened
    _event(scene, SYSTEM, Action.SLOT_OPENED, slot, opened, after={"status": "open"})
    scene.count("releases")

    fill_chance = 0.25 + 0.6 * progress
    how = None
    if rng.random() < fill_chance:
        how = rng.choices(
            (AppointmentSource.WAITLIST, AppointmentSource.ALTERNATIVE, AppointmentSource.STAFF),
            weights=(72, 16, 12),
        )[0]
    mode, size = MODES.get(service.category, (OfferMode.WAVES, 3))
    winner, won_at = _offer_waves(
        scene, slot, mode, size, opened, how == AppointmentSource.WAITLIST
    )
    if how == AppointmentSource.WAITLIST and winner is None:
        how = AppointmentSource.STAFF  # nobody free to accept: the front desk filled it
    if how is None:
        slot.fill_exhausted_at = opened + timedelta(hours=1)
        slot.fill_exhausted_reasons = {"already_offered": size}
        slot.status = SlotStatus.CLOSED  # the time passed unfilled
        return
    if how == AppointmentSource.WAITLIST:
        entry, offer = winner
        patient_id, booked_at = entry.patient_id, won_at
    else:
        pool = scene.history_patients if how == AppointmentSource.STAFF else scene.entries
        chosen = scene.free(
            pool, slot.start_at, slot.end_at, pid=lambda p: getattr(p, "patient_id", None) or p.id
        )
        if chosen is None:
            slot.status = SlotStatus.CLOSED
            return
        patient_id = getattr(chosen, "patient_id", None) or chosen.id
        offer = None
        lead = (slot.start_at - opened).total_seconds()
        booked_at = opened + timedelta(seconds=lead * rng.uniform(0.05, 0.6))
    scene.occupy(patient_id, slot.start_at, slot.end_at)
    appt = Appointment(
        slot=slot,
        patient_id=patient_id,
        source=how,
        booked_at=booked_at,
        offer=offer,
        booked_by_staff_id=scene.staff.id if how == AppointmentSource.STAFF else None,
        status=AppointmentStatus.BOOKED,
        created_at=booked_at,
        updated_at=booked_at,
    )
    db.session.add(appt)
    actor = (
        Actor.staff(scene.staff) if how == AppointmentSource.STAFF else Actor.patient(patient_id)
    )
    _event(scene, actor, Action.APPOINTMENT_CREATED, appt, booked_at, after={"source": how.value})
    _event(scene, actor, Action.SLOT_BOOKED, slot, booked_at, after={"status": "booked"})
    scene.messages.append(
        (patient_id, Purpose.CONFIRMATION, booked_at, None, ("appointment", appt))
    )
    scene.count(f"filled ({how.value})")
    _finish(scene, slot, appt, AppointmentStatus.COMPLETED, slot.end_at)


def _offer_waves(
    scene: _Scene,
    slot: Slot,
    mode: OfferMode,
    size: int,
    opened: datetime,
    will_fill: bool,
) -> tuple[tuple[WaitlistEntry, Offer] | None, datetime]:
    """Send waves until someone accepts (when ``will_fill``) or two or three waves lapse."""
    rng = scene.rng
    waves = rng.randint(1, 3)
    asked: set[int] = set()
    for wave in range(1, waves + 1):
        sent = opened + timedelta(minutes=2 + 30 * (wave - 1))
        if sent >= slot.start_at - timedelta(minutes=60):
            break
        batch = [
            e for e in rng.sample(scene.entries, len(scene.entries)) if e.patient_id not in asked
        ]
        batch = batch[:size]
        if not batch:
            break
        accept_here = will_fill and wave == waves
        taker = None
        if accept_here:
            taker = next(
                (
                    e
                    for e in batch
                    if all(
                        end <= slot.start_at or start >= slot.end_at
                        for start, end in scene.busy.get(e.patient_id, [])
                    )
                ),
                None,
            )
        accepted_at = sent + timedelta(minutes=rng.randint(2, 25))
        made: list[tuple[WaitlistEntry, Offer]] = []
        for entry in batch:
            asked.add(entry.patient_id)
            if taker is not None:
                status = (
                    OfferStatus.ACCEPTED
                    if entry is taker
                    else (OfferStatus.DECLINED if rng.random() < 0.3 else OfferStatus.WITHDRAWN)
                )
            else:
                status = OfferStatus.DECLINED if rng.random() < 0.25 else OfferStatus.EXPIRED
            responded = (
                accepted_at
                if status == OfferStatus.ACCEPTED
                else (
                    sent + timedelta(minutes=rng.randint(1, 29))
                    if status == OfferStatus.DECLINED
                    else None
                )
            )
            offer = Offer(
                slot=slot,
                waitlist_entry_id=entry.id,
                patient_id=entry.patient_id,
                status=status,
                wave=wave,
                mode=mode,
                score=rng.randint(20, 80),
                score_reasons=["waited longest" if wave == 1 else "next in line"],
                window_expires_at=sent + timedelta(minutes=30),
                responded_at=responded,
                withdrawn_reason="slot_filled" if status == OfferStatus.WITHDRAWN else None,
                created_at=sent,
                updated_at=responded or sent + timedelta(minutes=30),
            )
            db.session.add(offer)
            made.append((entry, offer))
            scene.count("offers")
            _event(scene, SYSTEM, Action.OFFER_CREATED, offer, sent, after={"wave": wave})
            _offer_message(scene, offer, entry.patient_id, sent)
            if status == OfferStatus.ACCEPTED:
                _event(
                    scene,
                    Actor.patient(entry.patient_id),
                    Action.OFFER_ACCEPTED,
                    offer,
                    accepted_at,
                )
            elif status == OfferStatus.DECLINED:
                _event(
                    scene, Actor.patient(entry.patient_id), Action.OFFER_DECLINED, offer, responded
                )
            elif status == OfferStatus.EXPIRED:
                _event(scene, SYSTEM, Action.OFFER_EXPIRED, offer, sent + timedelta(minutes=30))
            else:
                _event(scene, SYSTEM, Action.OFFER_WITHDRAWN, offer, accepted_at)
        _event(
            scene,
            SYSTEM,
            Action.SLOT_WAVE_STARTED,
            slot,
            sent,
            after={"wave": wave, "mode": mode.value},
        )
        if taker is not None:
            return next(pair for pair in made if pair[0] is taker), accepted_at
    return None, opened


#: How an offer message travelled: (weight, [(channel, final status)]).
_CHAINS = (
    (80, [("sms", AttemptStatus.DELIVERED)]),
    (7, [("sms", AttemptStatus.FAILED), ("email", AttemptStatus.DELIVERED)]),
    (4, [("sms", AttemptStatus.SKIPPED), ("email", AttemptStatus.DELIVERED)]),
    (
        5,
        [
            ("sms", AttemptStatus.UNDELIVERED),
            ("email", AttemptStatus.BOUNCED),
            ("voice", AttemptStatus.DELIVERED),
        ],
    ),
    (
        2,
        [
            ("sms", AttemptStatus.FAILED),
            ("email", AttemptStatus.BOUNCED),
            ("voice", AttemptStatus.NO_ANSWER),
        ],
    ),
    (
        3,
        [
            ("sms", AttemptStatus.TIMED_OUT),
            ("email", AttemptStatus.BOUNCED),
            ("voice", AttemptStatus.NO_ANSWER),
            ("manual", AttemptStatus.DELIVERED),
        ],
    ),
)


def _offer_message(scene: _Scene, offer: Offer, patient_id: int, at: datetime) -> None:
    chain = scene.rng.choices([c for _, c in _CHAINS], weights=[w for w, _ in _CHAINS])[0]
    scene.messages.append((patient_id, Purpose.OFFER, at, chain, ("offer", offer)))


def _reminder(scene: _Scene, appt: Appointment, patient_id: int, at: datetime) -> None:
    scene.messages.append((patient_id, Purpose.REMINDER, at, None, ("appointment", appt)))


def _write_message(
    scene: _Scene,
    patient_id: int,
    purpose: Purpose,
    at: datetime,
    chain: list[tuple[str, AttemptStatus]] | None,
    link: tuple[str, Any],
) -> None:
    chain = chain or [("sms", AttemptStatus.DELIVERED)]
    delivered = chain[-1][1] == AttemptStatus.DELIVERED
    kind, row = link
    key = f"demo-{purpose.value}:{row.id}"
    note = Notification(
        patient_id=patient_id,
        purpose=purpose,
        status=NotificationStatus.DELIVERED if delivered else NotificationStatus.EXHAUSTED,
        dedupe_key=key,
        completed_at=at + timedelta(minutes=len(chain) * 5),
        created_at=at,
        updated_at=at,
        **{f"{kind}_id": row.id},
    )
    db.session.add(note)
    for step, (channel, status) in enumerate(chain):
        tried = at + timedelta(minutes=5 * step)
        note.attempts.append(
            NotificationAttempt(
                patient_id=patient_id,
                purpose=purpose,
                channel=channel,
                status=status,
                not_before=tried,
                provider="outbox",
                sent_at=tried if status != AttemptStatus.SKIPPED else None,
                delivered_at=tried + timedelta(seconds=20)
                if status == AttemptStatus.DELIVERED
                else None,
                failed_at=tried + timedelta(minutes=4)
                if status not in (AttemptStatus.DELIVERED, AttemptStatus.SKIPPED)
                else None,
                created_at=tried,
                updated_at=tried,
            )
        )
    scene.count("messages")


def _write_fee(scene: _Scene, appt: Appointment, fee: int, at: datetime) -> None:
    charge = Charge(
        patient_id=appt.patient_id,
        appointment_id=appt.id,
        kind=ChargeKind.CANCELLATION_FEE,
        amount_cents=fee,
        idempotency_key=f"demo:cancellation_fee:appointment:{appt.id}",
        description="Late cancellation",
        created_at=at,
    )
    db.session.add(charge)
    steps = [(ChargeStatus.OWED, fee, Action.CHARGE_OPENED)]
    roll = scene.rng.random()
    if roll < 0.6:
        steps.append((ChargeStatus.SUCCEEDED, fee, Action.CHARGE_SUCCEEDED))
    elif roll < 0.85:
        steps.append((ChargeStatus.WAIVED, 0, Action.CHARGE_WAIVED))
    for n, (status, amount, action) in enumerate(steps):
        when = at + timedelta(hours=n * 2)
        db.session.add(
            ChargeEntry(
                charge=charge,
                status=status,
                amount_cents=amount,
                provider=PaymentProviderName.DESK if n else PaymentProviderName.SYSTEM,
                idempotency_key=f"{charge.idempotency_key}:{status.value}",
                recorded_by_id=scene.staff.id if n else None,
                note="Demo history",
                created_at=when,
            )
        )
        _event(
            scene,
            Actor.staff(scene.staff) if n else SYSTEM,
            action,
            charge,
            when,
            after={"status": status.value, "amount_cents": amount},
        )
    scene.count("fees")


def _event(
    scene: _Scene, actor: Actor, action: Action, entity: Any, at: datetime, **kw: Any
) -> None:
    scene.events.append((actor, action, entity, at, kw))
