"""``/staff/outreach``: the manual outreach queue, claiming a task and recording a call.

The queue lists due tasks first (by deadline, then priority), overdue ones marked, then
those waiting for a retry time. Claim and release answer htmx with the re-rendered
queue; the task page shows the call script and the outcome form.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db, now_utc
from portal.extensions import htmx
from portal.models import OutreachTask, StaffUser
from portal.models.enums import OutreachOutcome
from portal.services import outreach as outreach_service
from portal.services import outreach_calls
from portal.services.call_script import call_script
from portal.services.settings import settings
from portal.web.staff.actions import back_to, me, perform
from portal.web.staff.blueprint import bp

#: How each outcome reads on the form, and what it does.
OUTCOME_TEXT = {
    OutreachOutcome.REACHED_ACCEPTED: (
        "Reached: accepts the offer",
        "Books it (or holds it for a deposit) the usual way.",
    ),
    OutreachOutcome.REACHED_DECLINED: (
        "Reached: declines the offer",
        "They stay on the waitlist; the next patients are asked.",
    ),
    OutreachOutcome.REACHED: ("Reached and told", "The task is done."),
    OutreachOutcome.LEFT_MESSAGE: (
        "Left a voicemail",
        "The task is done; the link in the message still works.",
    ),
    OutreachOutcome.NOT_REACHED: ("No answer", "The task stays open: call again later."),
    OutreachOutcome.WRONG_NUMBER: (
        "Wrong number",
        "Flags the patient so someone finds the right number.",
    ),
}
RETRY_CHOICES = (15, 30, 60, 120, 240)


def _staff_names(tasks: list[OutreachTask]) -> dict[int, str]:
    ids = {t.claimed_by_id for t in tasks if t.claimed_by_id}
    return {u.id: u.name for u in (db.session.get(StaffUser, i) for i in ids) if u}


def _queue_context() -> dict[str, object]:
    now = now_utc()
    tasks = outreach_service.open_tasks(now)
    done = outreach_service.recently_done(now)
    return {
        "tasks": tasks,
        "done": done,
        "counts": outreach_service.queue_counts(now),
        "now": now,
        "names": _staff_names(tasks + done),
        "holder": lambda task: outreach_service.claim_holder(task, now),
        "me": me(),
        "outcome_text": OUTCOME_TEXT,
        "clinic_zone": outreach_service.clinic_zone,
    }


@bp.get("/outreach")
def outreach() -> ResponseReturnValue:
    """Show the queue (htmx: just the queue)."""
    template = "staff/_outreach_queue.html" if htmx else "staff/outreach.html"
    return render_template(template, **_queue_context())


def _task(task_id: int) -> OutreachTask:
    task = db.session.get(OutreachTask, task_id)
    if task is None:
        abort(404)
    return task


def _after(task_id: int, *, to_task: bool) -> ResponseReturnValue:
    if htmx and not to_task:
        return render_template("staff/_outreach_queue.html", fragment=True, **_queue_context())
    target = (
        url_for("staff.outreach_task", task_id=task_id) if to_task else url_for("staff.outreach")
    )
    return back_to(target)


@bp.post("/outreach/<id:task_id>/claim")
def outreach_claim(task_id: int) -> ResponseReturnValue:
    """Claim a task (one owner, however many click at once); then go to its page."""
    _task(task_id)
    claimed = perform(lambda: _claimed(task_id))
    return _after(task_id, to_task=claimed and not htmx)


def _claimed(task_id: int) -> str:
    task = outreach_calls.claim_task(task_id, me())
    return f"You have claimed the call to {task.patient.name}."


@bp.post("/outreach/<id:task_id>/release")
def outreach_release(task_id: int) -> ResponseReturnValue:
    """Give a claimed task back to the queue."""
    _task(task_id)
    perform(lambda: _released(task_id))
    return _after(task_id, to_task=False)


def _released(task_id: int) -> str:
    task = outreach_calls.release_claim(task_id, me())
    return f"The call to {task.patient.name} is back in the queue."


@bp.get("/outreach/<id:task_id>")
def outreach_task(task_id: int) -> ResponseReturnValue:
    """The call script and the outcome form."""
    return _render_task(_task(task_id))


def _render_task(
    task: OutreachTask, *, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    now = now_utc()
    holder_id = outreach_service.claim_holder(task, now)
    holder = db.session.get(StaffUser, holder_id) if holder_id else None
    return (
        render_template(
            "staff/outreach_task.html",
            task=task,
            script=call_script(task, now),
            outcomes=[(o, *OUTCOME_TEXT[o]) for o in outreach_service.outcomes_for(task)],
            holder=holder,
            mine=holder_id == me().id,
            retry_choices=RETRY_CHOICES,
            retry_default=settings().outreach_retry_minutes,
            error=error,
            now=now,
            zone=outreach_service.clinic_zone(task),
        ),
        status,
    )


@bp.post("/outreach/<id:task_id>/outcome")
def outreach_outcome(task_id: int) -> ResponseReturnValue:
    """Record what the call achieved (an answer goes through the normal accept/decline)."""
    task = _task(task_id)
    try:
        outcome = OutreachOutcome(request.form.get("outcome", ""))
    except ValueError:
        return _render_task(task, error="Choose what happened on the call.", status=422)
    minutes = request.form.get("retry_minutes", "")
    retry_at = None
    if outcome == OutreachOutcome.NOT_REACHED:
        if not minutes.isdigit() or not 1 <= int(minutes) <= 7 * 24 * 60:
            return _render_task(task, error="Choose when to call again.", status=422)
        retry_at = now_utc() + timedelta(minutes=int(minutes))
    notes = request.form.get("notes", "")[:2000]
    if not perform(lambda: _record(task_id, outcome, notes, retry_at)):
        db.session.expire_all()
        return _render_task(_task(task_id), status=409)
    return back_to(url_for("staff.outreach"))


def _record(task_id: int, outcome: OutreachOutcome, notes: str, retry_at: datetime | None) -> str:
    result = outreach_calls.record_outcome(task_id, outcome, me(), notes=notes, retry_at=retry_at)
    name = result.task.patient.name
    if result.accepted is not None:
        if result.accepted.held:
            return f"{name} accepted: the slot is held until the deposit is paid (see Today)."
        return f"{name} accepted: they are booked, and a confirmation is on its way."
    if outcome == OutreachOutcome.REACHED_DECLINED:
        return f"{name} declined; the next patients on the waitlist are being asked."
    if outcome == OutreachOutcome.NOT_REACHED:
        return f"No answer from {name}: the call is back in the queue for later."
    if outcome == OutreachOutcome.WRONG_NUMBER:
        return f"Wrong number: {name} is flagged for a new phone number."
    return f"Call to {name} recorded."
