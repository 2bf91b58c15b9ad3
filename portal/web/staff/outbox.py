"""``/staff/outbox`` (development): messages the outbox backend holds, and marking them.

Marking a message delivered, failed, undelivered or unanswered goes through the very
code a provider callback takes, so the chain moves exactly as it would in production.
The page exists only while some channel has no provider configured (404 otherwise).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from portal.db import db
from portal.services.errors import DomainError, NotFound
from portal.services.notify.outbox import MARKS, list_outbox, mark_outbox_message
from portal.services.notify.providers import outbox_active
from portal.web.staff.blueprint import bp

#: Button labels for the marks.
MARK_LABELS = {
    "delivered": "Delivered",
    "failed": "Failed",
    "undelivered": "Undelivered",
    "bounced": "Bounced",
    "no-answer": "No answer",
    "busy": "Busy",
}


def _require_outbox() -> None:
    if not outbox_active():
        abort(404)


@bp.get("/outbox")
def outbox() -> ResponseReturnValue:
    """List the newest outbox messages with buttons to report their fate."""
    _require_outbox()
    to = request.args.get("to", "").strip()[:254] or None
    return render_template(
        "staff/outbox.html",
        rows=list_outbox(to=to, limit=200),
        to=to or "",
        marks={channel.value: statuses for channel, statuses in MARKS.items()},
        mark_labels=MARK_LABELS,
    )


@bp.post("/outbox/<id:message_id>/mark")
def outbox_mark(message_id: int) -> ResponseReturnValue:
    """Report a delivery outcome for one outbox message, as the provider would."""
    _require_outbox()
    status = request.form.get("status", "")
    try:
        result = mark_outbox_message(message_id, status)
        db.session.commit()
    except NotFound:
        db.session.rollback()
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        label = MARK_LABELS.get(status, status)
        if result in ("duplicate", "ignored (already final)"):
            flash(f"Message {message_id} was already settled; nothing changed.", "info")
        else:
            flash(f"Message {message_id} marked {label.lower()}.", "success")
    return redirect(url_for("staff.outbox"), 303)
