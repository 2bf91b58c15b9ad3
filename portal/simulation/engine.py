"""Replaying the clinic's days on a virtual clock through the portal's own code.

The clock is a ``ManualClock``; every job the services schedule (``portal.queue``) is
diverted into this loop's agenda and run when the virtual clock reaches its time, by
its registered dotted path, exactly as a worker would. Periodic jobs run at a fixed
virtual cadence; the no-show sweep runs at the first 5-minute tick after a missed start
(what ``portal cron`` would do), and the database is analysed once a virtual day
(autovacuum's part). Messages go to the outbox backend; the "network"
delivers each one through the outbox's receipt path, and the simulated patient reads
it after a delay and answers through ``services.responses``, as the offer page would.
"""

from __future__ import annotations

import heapq
import importlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from portal.clock import ManualClock
from portal.db import db
from portal.models import (
    Appointment,
    Notification,
    NotificationAttempt,
    Offer,
    OutboxMessage,
    Slot,
)
from portal.models.enums import AppointmentSource, Purpose
from portal.queue import JobSpec
from portal.services.appointments import AWAITING_ARRIVAL, check_in
from portal.services.audit import Actor
from portal.services.cancellation import cancel_for_patient
from portal.services.errors import DomainError
from portal.services.notify.outbox import mark_outbox_message
from portal.services.responses import OfferState, accept_offer, decline_offer, offer_state
from portal.services.settings import forget_cached_settings
from portal.services.waitlist import join_waitlist
from portal.simulation.behaviour import DECLINE_SHARE, draw, shows_up
from portal.simulation.clinic import Plan

log = logging.getLogger(__name__)

#: Periodic jobs the loop runs itself, at this virtual cadence. ``dispatch_due`` is left
#: out: it only re-enqueues what a lost job or a silent provider left behind, and here
#: no job is lost and every message is delivered (it would also read RQ's Redis).
PERIODIC = ("jobs.filling.reconcile", "jobs.reminders.dispatch_reminders")
RECONCILE = "jobs.filling.reconcile"
SWEEP = "jobs.noshow.sweep_no_shows"
#: Only this job writes outbox messages (the outbox backend sends inside it).
SENDS = "jobs.notify.send_attempt"
DELIVERY_DELAY = timedelta(seconds=5)


@dataclass
class Tally:
    """What happened in the run that the database does not keep by itself."""

    releases: dict[int, datetime] = field(default_factory=dict)  # slot id → released at
    job_errors: int = 0
    answers: int = 0


class Simulation:
    """One policy's replay of the plan on a scratch database (inside its app context)."""

    def __init__(
        self,
        plan: Plan,
        clock: ManualClock,
        *,
        periodic_minutes: int = 60,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.periodic = timedelta(minutes=periodic_minutes)
        self.progress = progress
        self.tally = Tally()
        self._agenda: list[tuple[datetime, int, str, Any]] = []
        self._seq = itertools.count()
        self._latest_job: dict[str, int] = {}  # job id → the seq that should run
        self._job_ids: dict[int, str] = {}  # seq → job id
        self._last_message = 0
        self._known_freed: set[int] = set()
        self._reminded: set[int] = set()
        self._sweeps: set[datetime] = set()

    # ------------------------------------------------------------------ the agenda
    def at(self, when: datetime, kind: str, data: Any) -> int:
        seq = next(self._seq)
        heapq.heappush(self._agenda, (when, seq, kind, data))
        return seq

    def sink(
        self, spec: JobSpec, args: tuple[Any, ...], at: datetime | None, job_id: str | None
    ) -> None:
        """Receive an enqueue from ``portal.queue`` (a later one with the same id wins)."""
        seq = self.at(max(at or self.clock.now(), self.clock.now()), "job", (spec.path, args))
        if job_id:
            self._latest_job[job_id] = seq
            self._job_ids[seq] = job_id

    def run(self) -> Tally:
        """Replay from the plan's start to its end."""
        plan = self.plan
        for when, appointment_id in plan.cancellations:
            self.at(when, "cancel", appointment_id)
        for when, appointment_id in plan.arrivals:
            self.at(when, "arrive", appointment_id)
        for index, join in enumerate(plan.joins):
            self.at(join.at, "join", index)
        tick = plan.start
        while tick < plan.end:
            self.at(tick, "periodic", None)
            tick += self.periodic
        day = plan.start
        while day < plan.end:
            self.at(day, "analyze", None)
            day += timedelta(days=1)
        total = (plan.end - plan.start).total_seconds()
        while self._agenda and self._agenda[0][0] < plan.end:
            when, seq, kind, data = heapq.heappop(self._agenda)
            if when > self.clock.now():
                self.clock.set(when)
            forget_cached_settings()
            try:
                getattr(self, f"_on_{kind}")(seq, data)
            finally:
                db.session.rollback()
                db.session.remove()
            if kind == "job" and data[0] == SENDS:
                self._watch_outbox()
            if self.progress is not None:
                self.progress((self.clock.now() - plan.start).total_seconds() / total)
        self._note_freed_slots()
        return self.tally

    # ------------------------------------------------------------------ events
    def _run_job(self, path: str, args: tuple[Any, ...]) -> None:
        module, name = path.rsplit(".", 1)
        func = getattr(importlib.import_module(module), name)
        try:
            func(*args)
        except Exception as exc:  # a failing job must not stop the replay; it is counted
            self.tally.job_errors += 1
            log.warning("simulated job %s failed (%s)", path, type(exc).__name__)

    def _on_job(self, seq: int, data: tuple[str, tuple[Any, ...]]) -> None:
        job_id = self._job_ids.pop(seq, None)
        if job_id is not None and self._latest_job.get(job_id) != seq:
            return  # re-enqueued under the same id: the later one runs
        path, args = data
        self._run_job(path, args)
        if path == SWEEP:
            self._note_freed_slots()

    def _on_periodic(self, seq: int, data: None) -> None:
        for path in PERIODIC:
            self._run_job(path, ())

    def _on_analyze(self, seq: int, data: None) -> None:
        # What autovacuum does for a live database (it may be off on the scratch
        # server): without fresh statistics the planner takes the growing offer and
        # notification tables for empty, and the ranking's queries go quadratic.
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()

    def _on_cancel(self, seq: int, appointment_id: int) -> None:
        appointment = db.session.get(Appointment, appointment_id)
        if appointment is None or appointment.status not in AWAITING_ARRIVAL:
            return
        slot_id = appointment.slot_id
        try:
            cancel_for_patient(
                appointment_id, Actor.patient(appointment.patient_id), now=self.clock.now()
            )
            db.session.commit()
        except DomainError:
            db.session.rollback()
            return
        self.tally.releases[slot_id] = self.clock.now()

    def _on_arrive(self, seq: int, appointment_id: int) -> None:
        appointment = db.session.get(Appointment, appointment_id)
        if appointment is None or appointment.status not in AWAITING_ARRIVAL:
            return
        rng = draw(self.plan.seed, "show", appointment_id)
        # The book the clinic starts with was reminded by its old system (planning and
        # sending ~120 reminders a day through the portal would triple the run time);
        # bookings made during the run get the portal's own reminders.
        reminded = appointment.source == AppointmentSource.STAFF or appointment_id in self._reminded
        if shows_up(rng, reminded):
            check_in(appointment, Actor.patient(appointment.patient_id), now=self.clock.now())
            db.session.commit()
            return
        # Nobody comes: the cron sweep notices at its next 5-minute tick after the grace.
        start = appointment.starts_at or appointment.slot.start_at
        due = start + timedelta(minutes=6)
        due = due.replace(second=0, microsecond=0) + timedelta(minutes=-due.minute % 5)
        if due not in self._sweeps:
            self._sweeps.add(due)
            self.at(due, "job", (SWEEP, ()))

    def _on_join(self, seq: int, index: int) -> None:
        from portal.models import Location, Patient, Practitioner, Service

        join = self.plan.joins[index]
        practitioner = (
            db.session.get(Practitioner, join.practitioner_id) if join.practitioner_id else None
        )
        join_waitlist(
            patient=db.session.get(Patient, join.patient_id),
            service=db.session.get(Service, join.service_id),
            location=db.session.get(Location, join.location_id),
            preferred_practitioner=practitioner,
            windows=join.windows,
            short_notice_ok=join.short_notice_ok,
            actor=Actor.patient(join.patient_id),
        )
        db.session.commit()
        # The cron's reconcile (every minute in production) restarts stopped slots the
        # newcomer fits; the periodic one here runs less often, so run it for the join.
        self.at(self.clock.now() + timedelta(minutes=1), "job", (RECONCILE, ()))

    def _on_deliver(self, seq: int, data: tuple[int, str, int | None, int | None]) -> None:
        message_id, purpose, _offer, appointment_id = data
        mark_outbox_message(message_id, "delivered")
        db.session.commit()
        if purpose == Purpose.REMINDER.value and appointment_id is not None:
            self._reminded.add(appointment_id)

    def _on_read(self, seq: int, data: tuple[int, int]) -> None:
        offer_id, patient_id = data
        offer = db.session.get(Offer, offer_id)
        if offer is None or offer_state(offer, self.clock.now()) != OfferState.OPEN:
            return
        persona = self.plan.personas.get(patient_id)
        if persona is None:
            return
        slot = offer.slot
        rng = draw(self.plan.seed, "answer", patient_id, slot.start_at.isoformat(), slot.service_id)
        p = persona.acceptance(slot.start_at, slot.practitioner_id, self.clock.now())
        actor = Actor.patient(patient_id)
        self.tally.answers += 1
        try:
            if rng.random() < p:
                outcome = accept_offer(offer_id, actor=actor, now=self.clock.now())
                db.session.commit()
                appointment = outcome.appointment
                if appointment is not None:
                    self.at(slot.start_at - timedelta(minutes=5), "arrive", appointment.id)
            elif rng.random() < DECLINE_SHARE:
                decline_offer(offer_id, actor=actor, now=self.clock.now())
                db.session.commit()
        except DomainError:
            db.session.rollback()  # someone else was faster, or the window closed

    # ------------------------------------------------------------------ watching
    def _watch_outbox(self) -> None:
        """Deliver every new outbox message; schedule the reading of new offers."""
        rows = db.session.execute(
            sa.select(
                OutboxMessage.id,
                OutboxMessage.channel,
                Notification.purpose,
                Notification.offer_id,
                Notification.appointment_id,
                Notification.patient_id,
            )
            .join(NotificationAttempt, NotificationAttempt.id == OutboxMessage.attempt_id)
            .join(Notification, Notification.id == NotificationAttempt.notification_id)
            .where(OutboxMessage.id > self._last_message)
            .order_by(OutboxMessage.id)
        ).all()
        db.session.rollback()
        now = self.clock.now()
        for message_id, channel, purpose, offer_id, appointment_id, patient_id in rows:
            self._last_message = max(self._last_message, message_id)
            delivered = now + DELIVERY_DELAY
            self.at(delivered, "deliver", (message_id, purpose.value, offer_id, appointment_id))
            persona = self.plan.personas.get(patient_id)
            if purpose == Purpose.OFFER and offer_id is not None and persona is not None:
                rng = draw(self.plan.seed, "read", message_id)
                delay = persona.reading_delay(str(channel.value), delivered, rng)
                self.at(delivered + delay, "read", (offer_id, patient_id))

    def _note_freed_slots(self) -> None:
        """Freed time after a no-show counts as a release from the moment it opened."""
        rows = db.session.execute(
            sa.select(Slot.id, Slot.opened_at).where(Slot.freed_from_id.is_not(None))
        ).all()
        db.session.rollback()
        for slot_id, opened_at in rows:
            if slot_id not in self._known_freed:
                self._known_freed.add(slot_id)
                self.tally.releases[slot_id] = opened_at
