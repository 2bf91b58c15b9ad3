"""Working the outreach queue: claim a task, call, record what happened.

Claiming is a conditional update, so two people clicking Claim at once get one owner; a
claim nobody works on lapses after ``outreach_claim_minutes``. An answer to an offer
goes through the normal accept/decline path (``responses``), "no answer" keeps the task
open with a time to call again, a wrong number flags the patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.db import db, now_utc
from portal.models import Offer, OutreachTask, StaffUser, WaitlistEntry
from portal.models.enums import FlagKind, OutreachOutcome, WaitlistStatus
from portal.services import flags, responses
from portal.services.audit import Action, Actor, record
from portal.services.booking import AcceptOutcome, updated_row
from portal.services.errors import Conflict, DomainError, NotFound
from portal.services.outreach import OFFER_OUTCOMES, claim_holder, outcomes_for
from portal.services.settings import settings

#: Outcomes after which the task stays open (call again later).
RETRY_OUTCOMES = (OutreachOutcome.NOT_REACHED,)
MAX_NOTES = 1000
MAX_RETRY = timedelta(days=7)


def _lock_task(task_id: int) -> OutreachTask:
    task = db.session.scalar(
        sa.select(OutreachTask)
        .where(OutreachTask.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if task is None:
        raise NotFound("No such outreach task.", code="unknown_task")
    return task


def _refuse_claim(task_id: int, now: datetime) -> None:
    task = db.session.get(OutreachTask, task_id, populate_existing=True)
    if task is None:
        raise NotFound("No such outreach task.", code="unknown_task")
    if task.completed_at is not None:
        raise Conflict("This task is already done.", code="task_done")
    holder = db.session.get(StaffUser, task.claimed_by_id) if task.claimed_by_id else None
    name = holder.name if holder else "Someone else"
    raise Conflict(f"{name} has already claimed this task.", code="task_claimed")


def claim_task(task_id: int, staff: StaffUser, now: datetime | None = None) -> OutreachTask:
    """Make ``staff`` the task's owner unless someone else holds a live claim."""
    now = now or now_utc()
    expires = now + timedelta(minutes=settings().outreach_claim_minutes)
    task = updated_row(
        sa.update(OutreachTask)
        .where(
            OutreachTask.id == task_id,
            OutreachTask.completed_at.is_(None),
            sa.or_(
                OutreachTask.claimed_by_id.is_(None),
                OutreachTask.claimed_by_id == staff.id,
                OutreachTask.claim_expires_at <= now,
            ),
        )
        .values(claimed_by_id=staff.id, claimed_at=now, claim_expires_at=expires, updated_at=now)
        .returning(OutreachTask)
    )
    if task is None:
        _refuse_claim(task_id, now)
    record(Actor.staff(staff), Action.OUTREACH_CLAIMED, task, after={"until": expires})
    return task


def release_claim(task_id: int, staff: StaffUser, now: datetime | None = None) -> OutreachTask:
    """Give the task back to the queue (only its owner can)."""
    now = now or now_utc()
    task = _lock_task(task_id)
    if task.completed_at is not None:
        raise Conflict("This task is already done.", code="task_done")
    if claim_holder(task, now) != staff.id:
        raise Conflict("You do not hold a claim on this task.", code="task_not_claimed")
    task.claimed_by_id = task.claimed_at = task.claim_expires_at = None
    record(Actor.staff(staff), Action.OUTREACH_RELEASED, task)
    return task


@dataclass
class OutcomeResult:
    """What recording an outcome did, for the page to say."""

    task: OutreachTask
    outcome: OutreachOutcome
    accepted: AcceptOutcome | None = None
    retry_at: datetime | None = None


def record_outcome(
    task_id: int,
    outcome: OutreachOutcome,
    staff: StaffUser,
    *,
    notes: str = "",
    retry_at: datetime | None = None,
    now: datetime | None = None,
) -> OutcomeResult:
    """Record a call's outcome; answers to an offer go through the normal accept/decline."""
    now = now or now_utc()
    actor = Actor.staff(staff)
    task = _lock_task(task_id)
    if task.completed_at is not None:
        raise Conflict("This task is already done.", code="task_done")
    holder = claim_holder(task, now)
    if holder is not None and holder != staff.id:
        _refuse_claim(task_id, now)
    if outcome not in outcomes_for(task):
        raise DomainError("That outcome does not fit this task.", code="invalid_outcome")
    notes = " ".join(notes.split())[:MAX_NOTES]
    result = OutcomeResult(task, outcome)
    if outcome in OFFER_OUTCOMES:
        _reachable_again(task, actor, now)
    if outcome == OutreachOutcome.REACHED_ACCEPTED:
        result.accepted = responses.accept_offer(task.offer_id, actor=actor, now=now)
    elif outcome == OutreachOutcome.REACHED_DECLINED:
        responses.decline_offer(task.offer_id, actor=actor, now=now)
    elif outcome == OutreachOutcome.WRONG_NUMBER:
        note = f"Wrong number (outreach call). {notes}".strip()
        flags.raise_flag(task.patient, FlagKind.INVALID_PHONE, note, actor)
    task.call_attempts += 1
    task.outcome = outcome
    task.outcome_notes = notes
    task.claimed_by_id = task.claimed_at = task.claim_expires_at = None
    if outcome in RETRY_OUTCOMES:
        result.retry_at = task.retry_at = _retry_time(retry_at, now)
    else:
        task.retry_at = None
        task.completed_at = now
    record(
        actor,
        Action.OUTREACH_OUTCOME_RECORDED,
        task,
        after={"outcome": outcome, "retry_at": task.retry_at, "calls": task.call_attempts},
    )
    return result


def _reachable_again(task: OutreachTask, actor: Actor, now: datetime) -> None:
    """The patient answered the phone: the want behind the offer is live again.

    Exhausting every channel marked their entries unreachable; a call that got through
    proves otherwise for this want, so the answer can book (or keep them waiting).
    """
    entry_id = db.session.scalar(
        sa.select(Offer.waitlist_entry_id).where(Offer.id == task.offer_id)
    )
    revived = db.session.scalar(
        sa.update(WaitlistEntry)
        .where(WaitlistEntry.id == entry_id, WaitlistEntry.status == WaitlistStatus.UNREACHABLE)
        .values(status=WaitlistStatus.ACTIVE, updated_at=now)
        .returning(WaitlistEntry.id)
    )
    if revived is not None:
        entry = db.session.get_one(WaitlistEntry, revived)
        record(actor, Action.WAITLIST_RESUMED, entry, after={"why": "reached by phone"})


def _retry_time(requested: datetime | None, now: datetime) -> datetime:
    if requested is None:
        return now + timedelta(minutes=settings().outreach_retry_minutes)
    if not now < requested <= now + MAX_RETRY:
        raise DomainError(
            "Choose a time to call again within the next 7 days.", code="invalid_retry_time"
        )
    return requested
