"""The manual outreach queue: what staff must do when no channel reached a patient.

A task is raised once per exhausted message (``open_outreach_task``); the queue lists
the due ones first. A task about an offer that has ended closes itself
(``close_ended_tasks``, from the periodic job). Claiming a task and recording a call's
outcome are in ``outreach_calls`` (they answer offers, so they sit above ``responses``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import joinedload

from portal.db import db, now_utc
from portal.models import Notification, Offer, OutreachTask
from portal.models.enums import OfferStatus, OutreachOutcome, OutreachPriority, Purpose
from portal.services.audit import SYSTEM, Action, record
from portal.services.settings import settings

#: Outcomes that answer an offer; only tasks about an offer can record them.
OFFER_OUTCOMES = (OutreachOutcome.REACHED_ACCEPTED, OutreachOutcome.REACHED_DECLINED)
#: Outcomes staff can record on a task that is not about an offer.
MESSAGE_OUTCOMES = (
    OutreachOutcome.REACHED,
    OutreachOutcome.LEFT_MESSAGE,
    OutreachOutcome.NOT_REACHED,
    OutreachOutcome.WRONG_NUMBER,
)

_PRIORITY_RANK = sa.case(
    {OutreachPriority.HIGH: 0, OutreachPriority.NORMAL: 1, OutreachPriority.LOW: 2},
    value=OutreachTask.priority,
    else_=3,
)


def open_outreach_task(notification: Notification, now: datetime) -> None:
    """Queue a high-priority call for staff about ``notification`` (once per message)."""
    db.session.execute(
        insert(OutreachTask)
        .values(
            patient_id=notification.patient_id,
            notification_id=notification.id,
            offer_id=notification.offer_id,
            appointment_id=notification.appointment_id,
            reason=f"No channel reached the patient about: {notification.purpose.value}",
            priority=OutreachPriority.HIGH,
            deadline_at=now + timedelta(minutes=settings().outreach_deadline_minutes),
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[OutreachTask.notification_id])
    )


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        OutreachTask.completed_at.is_(None),
        sa.or_(OutreachTask.retry_at.is_(None), OutreachTask.retry_at <= now),
    )


@dataclass(frozen=True)
class QueueCounts:
    """Open work in the queue: due now, and how many of those are past their deadline."""

    due: int
    overdue: int


def queue_counts(now: datetime | None = None) -> QueueCounts:
    """Count the tasks to call now and those already overdue (one query)."""
    now = now or now_utc()
    due, overdue = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(OutreachTask.deadline_at < now),
        ).where(_due(now))
    ).one()
    return QueueCounts(due or 0, overdue or 0)


def open_tasks(now: datetime | None = None, limit: int = 200) -> list[OutreachTask]:
    """Open tasks: due ones first (by deadline, then priority), then those waiting to retry."""
    now = now or now_utc()
    waiting = sa.and_(OutreachTask.retry_at.is_not(None), OutreachTask.retry_at > now)
    return list(
        db.session.scalars(
            sa.select(OutreachTask)
            .where(OutreachTask.completed_at.is_(None))
            .options(joinedload(OutreachTask.patient), joinedload(OutreachTask.notification))
            .order_by(
                sa.case((waiting, 1), else_=0),
                sa.case((waiting, OutreachTask.retry_at), else_=OutreachTask.deadline_at),
                _PRIORITY_RANK,
                OutreachTask.id,
            )
            .limit(limit)
        )
    )


def recently_done(now: datetime | None = None, limit: int = 20) -> list[OutreachTask]:
    """Tasks finished in the last day, newest first."""
    now = now or now_utc()
    return list(
        db.session.scalars(
            sa.select(OutreachTask)
            .where(OutreachTask.completed_at > now - timedelta(days=1))
            .options(joinedload(OutreachTask.patient))
            .order_by(OutreachTask.completed_at.desc(), OutreachTask.id.desc())
            .limit(limit)
        )
    )


def clinic_zone(task: OutreachTask) -> str:
    """The zone staff read the task's times in: its slot's location, else the patient's."""
    for row in (task.offer, task.appointment):
        if row is not None:
            return row.slot.location.timezone
    home = task.patient.home_location
    return home.timezone if home is not None else task.patient.timezone


def purpose_of(task: OutreachTask) -> Purpose | None:
    """What the unreachable message was about (offer, cancellation, …)."""
    return task.notification.purpose if task.notification is not None else None


def is_about_offer(task: OutreachTask) -> bool:
    return task.offer_id is not None and purpose_of(task) in (Purpose.OFFER, None)


def outcomes_for(task: OutreachTask) -> tuple[OutreachOutcome, ...]:
    """The outcomes staff may record on ``task``, in the order the form lists them."""
    if is_about_offer(task):
        return (*OFFER_OUTCOMES, *MESSAGE_OUTCOMES[1:])
    return MESSAGE_OUTCOMES


def claim_holder(task: OutreachTask, now: datetime) -> int | None:
    """The staff id whose claim on ``task`` is still live, if any."""
    if task.claimed_by_id is None or task.claim_expires_at is None:
        return None
    return task.claimed_by_id if task.claim_expires_at > now else None


def close_ended_tasks(now: datetime | None = None) -> int:
    """Close open tasks about offers that can no longer be answered; return how many."""
    now = now or now_utc()
    ended = (
        sa.select(Offer.id)
        .where(
            Offer.id == OutreachTask.offer_id,
            sa.or_(Offer.status != OfferStatus.PENDING, Offer.window_expires_at <= now),
        )
        .exists()
    )
    about_offer = (
        sa.select(Notification.id)
        .where(
            Notification.id == OutreachTask.notification_id, Notification.purpose == Purpose.OFFER
        )
        .exists()
    )
    closed = db.session.scalars(
        sa.update(OutreachTask)
        .where(OutreachTask.completed_at.is_(None), ended, about_offer)
        .values(
            completed_at=now,
            outcome=OutreachOutcome.NOT_NEEDED,
            claimed_by_id=None,
            claimed_at=None,
            claim_expires_at=None,
            updated_at=now,
        )
        .returning(OutreachTask)
        .execution_options(synchronize_session=False)
    ).all()
    for task in closed:
        record(SYSTEM, Action.OUTREACH_CLOSED, task, after={"why": "offer ended"})
    return len(closed)
